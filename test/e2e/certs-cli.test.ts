// `domsec-milter certs` as an administrator runs it: the real CLI process
// against a real slapd (partner directory), a real redis-server (the shared
// cache the running milters use) and PEM files on disk.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { runCli } from '../helpers/cli.js';
import { dca, ou, person } from '../helpers/ldap-fixtures.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startSlapd, type TestSlapd } from '../helpers/slapd.js';

let dir: string;
let net: DomainPki;
let com: DomainPki;
let slapd: TestSlapd;
let redis: TestRedis;
let env: Record<string, string>;

const pem = (d: DomainPki) => d.encryption.certificate.x509.toString();
const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-certs-cli-'));
  [net, com] = await Promise.all([
    generateDomainPki('example.net'),
    generateDomainPki('example.com'),
  ]);
  await writeDomainPki(join(dir, 'keys'), 'example.org', await generateDomainPki('example.org'));
  await writeFile(join(dir, 'net.pem'), pem(net));
  await writeFile(
    join(dir, 'anchors.pem'),
    net.ca.certificate.x509.toString() + com.ca.certificate.x509.toString(),
  );
  await mkdir(join(dir, 'partners'));
  await writeFile(join(dir, 'partners', 'example.net.pem'), pem(net));
  [slapd, redis] = await Promise.all([
    startSlapd({
      suffix: 'dc=example,dc=com',
      entries: [
        ou('partners', 'dc=example,dc=com'),
        person('com', 'ou=partners,dc=example,dc=com', dca('example.com'), {
          'userCertificate;binary': [com.encryption.certificate.der],
        }),
      ],
    }),
    startRedis(),
  ]);
  env = {
    DOMSEC_KEYS_DIR: join(dir, 'keys'),
    DOMSEC_LOCAL_DOMAINS: 'example.org',
    DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
    DOMSEC_TRUST_ANCHORS: join(dir, 'anchors.pem'),
    DOMSEC_LDAP_URLS: slapd.url('ou=partners,dc=example,dc=com'),
    DOMSEC_REDIS_URL: redis.url,
    DOMSEC_LOOKUP_TIMEOUT: '2',
  };
});

after(async () => {
  await slapd?.stop();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('certs lookup', () => {
  it('finds a partner in the static directory, validates it, exit 0', async () => {
    const r = await runCli(['certs', 'lookup', 'example.net', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = json(r.stdout);
    assert.equal(out['chosen'], 'directory');
    assert.deepEqual((out['chain'] as { trusted: boolean }).trusted, true);
  });

  it('asks LDAP (real slapd) when the directory lacks the domain', async () => {
    const r = await runCli(['certs', 'lookup', 'example.com'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^directory: not found$/m);
    assert.match(r.stdout, /^ldap: found: CN=example.com domain confidentiality/m);
    assert.match(r.stdout, /^used: ldap$/m);
    assert.match(r.stdout, /^chain: trusted$/m);
  });

  it('a domain nobody knows: exit 2', async () => {
    const r = await runCli(['certs', 'lookup', 'nowhere.example'], env);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /^ldap: not found$/m);
  });

  it('a directory that is down: exit 75 and the reason names it', async () => {
    const down = `ldap://127.0.0.1:${await freePort()}/dc=example,dc=com`;
    const r = await runCli(['certs', 'lookup', 'nowhere.example'], {
      ...env,
      DOMSEC_LDAP_URLS: down,
    });
    assert.equal(r.code, 75, r.stdout + r.stderr);
    assert.ok(r.stdout.includes(`ldap: temporary failure`) && r.stdout.includes(down), r.stdout);
  });

  it('a bad domain is a usage error', async () => {
    const r = await runCli(['certs', 'lookup', 'not a domain'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /certs lookup needs a DOMAIN/);
  });
});

describe('certs import, list and purge through the shared Redis cache', () => {
  it('import puts a certificate where every milter sharing Redis finds it', async () => {
    const r = await runCli(['certs', 'import', join(dir, 'net.pem')], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported for example.net: CN=example.net domain confidentiality/);
    // A lookup with the directory out of the way now finds it as imported.
    const found = await runCli(['certs', 'lookup', 'example.net', '--json'], {
      ...env,
      DOMSEC_PARTNER_SOURCES: 'harvested',
    });
    assert.equal(found.code, 0, found.stderr);
    assert.equal(json(found.stdout)['chosen'], 'imported');
  });

  it('list shows our identity, the directory and the cached answers', async () => {
    const r = await runCli(['certs', 'list', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = json(r.stdout) as {
      ours: { domain: string; label: string }[];
      partners: { emails: string[] }[];
      cached: { source: string; domain: string }[];
      cache: string;
    };
    assert.deepEqual(out.ours.map((o) => `${o.domain}/${o.label}`).sort(), [
      'example.org/encrypt',
      'example.org/sign',
    ]);
    assert.ok(out.partners.some((p) => p.emails.includes(dca('example.net'))));
    assert.ok(out.cached.some((c) => c.source === 'imported' && c.domain === 'example.net'));
    assert.equal(out.cache, 'redis');
  });

  it('purge DOMAIN forgets that domain only; purge --all the rest', async () => {
    // Cache an LDAP answer through a lookup the way the milter does it: via serve's sources.
    await runCli(['certs', 'import', join(dir, 'net.pem')], env);
    const purged = await runCli(['certs', 'purge', 'example.net'], env);
    assert.equal(purged.code, 0, purged.stderr);
    assert.match(purged.stdout, /removed 1 cached entry/);
    const after = json((await runCli(['certs', 'list', '--json'], env)).stdout) as {
      cached: { domain: string }[];
    };
    assert.ok(!after.cached.some((c) => c.domain === 'example.net'));
    const all = await runCli(['certs', 'purge', '--all'], env);
    assert.equal(all.code, 0);
    assert.match(all.stdout, /removed \d+ cached entr/);
  });

  it('import without Redis is refused: the running milter would never see it', async () => {
    const { DOMSEC_REDIS_URL: _, ...noRedis } = env;
    const r = await runCli(['certs', 'import', join(dir, 'net.pem')], noRedis);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs DOMSEC_REDIS_URL/);
  });

  it('Redis configured but down: the command says so instead of using a private cache', async () => {
    const down = `redis://127.0.0.1:${await freePort()}`;
    const r = await runCli(['certs', 'purge', '--all'], { ...env, DOMSEC_REDIS_URL: down });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Redis \(DOMSEC_REDIS_URL\) did not answer/);
  });

  it('import of a file without a usable encryption certificate is refused', async () => {
    await writeFile(join(dir, 'signing.pem'), net.signing.certificate.x509.toString());
    const r = await runCli(['certs', 'import', join(dir, 'signing.pem')], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no certificate usable for encryption/);
  });
});
