// Secrets stay out of the error paths too: the real CLI started with a Redis
// URL whose password is wrong, whose server is down, or which does not
// parse; and with a wrong PKCS#12 passphrase. Whatever it prints (one start-up
// line, or warnings while it runs on its memory cache) names the problem
// without the password, the passphrase or key material.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseRedisUrl, RedisUrlError } from '../../src/cache/redis.js';
import { certificatePem, type DomainPki, generateDomainPki, keyPem } from '../../src/pki/keygen.js';
import { type CliResult, runCli, startServe } from '../helpers/cli.js';
import { runToolOk } from '../helpers/openssl.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { assertNoneIn, keyFragments, passwordForms } from '../helpers/secret-material.js';
import { milterAt, OUTSIDE, send } from '../helpers/security-fixture.js';
import { until } from '../helpers/wait.js';

const REDIS_PASSWORD = 'Wr0ng-or-right/Pw+5520';
const PASSPHRASE = 'the right p12 passphrase 31';
const WRONG_PASSPHRASE = 'a wrong p12 passphrase 86';

let dir: string;
let pki: DomainPki;
let redis: TestRedis;
let keys: string;

before(async () => {
  [dir, pki, redis] = await Promise.all([
    mkdtemp(join(tmpdir(), 'domsec-nosecrets-fail-')),
    generateDomainPki('example.net'),
    startRedis({ password: REDIS_PASSWORD }),
  ]);
  keys = join(dir, 'keys');
  await mkdir(keys, { mode: 0o700 });
  await writeFile(join(dir, 'k.pem'), keyPem(pki.encryption.privateKey), { mode: 0o600 });
  await writeFile(join(dir, 'c.pem'), certificatePem(pki.encryption.certificate));
  await runToolOk(
    'openssl',
    ['pkcs12', '-export', '-in', join(dir, 'c.pem'), '-inkey', join(dir, 'k.pem')].concat([
      '-passout',
      'env:DOMSEC_P12_PASS',
      '-out',
      join(keys, 'example.net.p12'),
    ]),
    { env: { DOMSEC_P12_PASS: PASSPHRASE } },
  );
  await chmod(join(keys, 'example.net.p12'), 0o600);
  await rm(join(dir, 'k.pem'));
});

after(async () => {
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function secrets(): Record<string, string[]> {
  return {
    'the Redis password': passwordForms(REDIS_PASSWORD),
    'the passphrase': passwordForms(PASSPHRASE),
    'the wrong passphrase': passwordForms(WRONG_PASSPHRASE),
    'the key': keyFragments(pki.encryption.privateKey),
  };
}

const base = (): Record<string, string> => ({
  DOMSEC_LOCAL_DOMAINS: 'example.net',
  DOMSEC_KEYS_DIR: keys,
  DOMSEC_KEYS_PASSPHRASE: PASSPHRASE,
});

async function serveOnce(env: Record<string, string>): Promise<CliResult> {
  return runCli(['serve'], {
    ...base(),
    DOMSEC_LISTEN: `inet:127.0.0.1:${await freePort()}`,
    DOMSEC_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
    ...env,
  });
}

/** One line on stderr, exit 1, matching `reason`, no secret anywhere. */
function assertOneLineRefusal(r: CliResult, reason: RegExp): void {
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, reason);
  assertNoneIn(r.stdout + r.stderr, secrets(), 'the output');
}

const passwordUrl = (port: number, path = '') =>
  `redis://:${encodeURIComponent(REDIS_PASSWORD)}@127.0.0.1:${port}${path}`;

describe('no secret in what the CLI prints when things go wrong', () => {
  it('a Redis URL with a password that does not parse (database not a number): serve refuses without the password', async () => {
    const r = await serveOnce({ DOMSEC_REDIS_URL: passwordUrl(redis.port, '/zero') });
    assertOneLineRefusal(r, /^domsec-milter: cannot start: .*the database must be a number/);
    assert.match(
      r.stderr,
      /redis:\/\/\*\*\*@127\.0\.0\.1:\d+\/zero/,
      'the URL shown with the password masked',
    );
  });

  it('a Redis Sentinel URL with a password and no master name: the same', async () => {
    const url = `redis-sentinel://:${encodeURIComponent(REDIS_PASSWORD)}@127.0.0.1:${redis.port}`;
    const r = await serveOnce({ DOMSEC_REDIS_URL: url });
    assertOneLineRefusal(r, /^domsec-milter: cannot start: .*Sentinel master name is missing/);
  });

  it('Redis URL errors mask the credentials however they are written (user name, unencoded "/" or "@")', () => {
    for (const url of [
      'redis://admin:Pw-SECRET-1@127.0.0.1:6379/zero',
      'redis://:Pw/SECRET-1@127.0.0.1:6379/0',
      'redis://:Pw@SECRET-1@127.0.0.1:6379/zero',
      'rediss://:Pw-SECRET-1@127.0.0.1:6379/x',
      'redis-sentinel://:Pw-SECRET-1@127.0.0.1:26379',
      'redis-cluster://:Pw-SECRET-1@',
    ]) {
      assert.throws(
        () => parseRedisUrl(url),
        (err: unknown) => {
          assert.ok(err instanceof RedisUrlError, `${url}: ${String(err)}`);
          assert.ok(!/SECRET|Pw/.test(err.message), err.message);
          assert.match(err.message, /^[a-z-]+:\/\/\*\*\*@/);
          return true;
        },
      );
    }
  });

  it('certs list with that URL: refuses without the password', async () => {
    const r = await runCli(['certs', 'list'], {
      ...base(),
      DOMSEC_REDIS_URL: passwordUrl(redis.port, '/zero'),
    });
    assert.notEqual(r.code, 0);
    assertNoneIn(r.stdout + r.stderr, secrets(), 'certs list');
    assert.match(r.stderr, /database must be a number/);
  });

  it('check-config with a password in the Redis URL: redacted', async () => {
    const r = await runCli(['check-config'], {
      ...base(),
      DOMSEC_REDIS_URL: passwordUrl(redis.port),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^DOMSEC_REDIS_URL=\(redacted\)$/m);
    assertNoneIn(r.stdout + r.stderr, secrets(), 'check-config');
  });

  it('a wrong PKCS#12 passphrase: serve refuses in one line, neither passphrase shown', async () => {
    const r = await serveOnce({ DOMSEC_KEYS_PASSPHRASE: WRONG_PASSPHRASE });
    assertOneLineRefusal(r, /^domsec-milter: cannot start: .*example\.net\.p12.*wrong passphrase/);
  });

  for (const [what, url] of [
    [
      'a wrong Redis password',
      () => `redis://:${encodeURIComponent(WRONG_PASSPHRASE)}@127.0.0.1:${redis.port}`,
    ],
    ['Redis down (nothing listening)', async () => passwordUrl(await freePort())],
  ] as const) {
    it(`${what}: serve runs on its memory cache, warns, and logs no password`, async () => {
      const m = await startServe({
        ...base(),
        DOMSEC_LOG_LEVEL: 'debug',
        DOMSEC_REDIS_URL: await url(),
      });
      try {
        await until(() => m.output().includes('Redis unreachable'), 10_000, 'the Redis warning');
        // A message through it, so the cache is asked.
        const o = await send(
          milterAt(m.port),
          Buffer.from('From: a@example.org\r\nTo: b@example.net\r\nSubject: s\r\n\r\nhello\r\n'),
          { from: '<a@example.org>', rcpts: ['<b@example.net>'], address: OUTSIDE },
        );
        assert.equal(o.decision?.type, 'accept');
      } finally {
        await m.stop();
      }
      assertNoneIn(m.output(), secrets(), 'the log');
    });
  }
});
