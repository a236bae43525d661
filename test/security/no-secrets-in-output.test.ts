// Logs, metrics and `check-config` carry no secret. The real `domsec-milter
// serve` runs at debug level with everything secret configured: a Redis URL
// with a password (a real redis-server that requires it), PKCS#12 keys opened
// by a .pass file and by DOMSEC_KEYS_PASSPHRASE, PEM keys. Messages go
// through it that succeed and that fail in every way we can provoke; then
// its whole log, /metrics and `check-config` are searched for the password,
// the passphrases, fragments of the private keys, and the subjects and
// bodies of the messages. Metric label values must come from bounded sets.
// Start-up failures with secrets around are in no-secrets-on-failure.test.ts.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificatePem, keyPem } from '../../src/pki/keygen.js';
import { runCli, type ServingMilter, startServe } from '../helpers/cli.js';
import { runToolOk } from '../helpers/openssl.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import {
  assertNoneIn,
  keyFragments,
  messageForms,
  passwordForms,
} from '../helpers/secret-material.js';
import {
  AUTHSERV_ID,
  derOf,
  INSIDE,
  milterAt,
  OUTSIDE,
  protectedByOrg,
  replyOf,
  type SecurityPki,
  securityPki,
  send,
  TRUSTED_NETWORKS,
  withDer,
} from '../helpers/security-fixture.js';

const REDIS_PASSWORD = 'r3dis-Pw/Secret+7781';
const FILE_PASSPHRASE = 'pass-file Passphrase 0427';
const ENV_PASSPHRASE = 'env Passphrase 9913';

/** Words of the messages sent, one per message, none of which may appear in logs or metrics. */
const SUBJECT = (n: number) => `Quarterly figures LOCHNESS-${n}`;
const BODY = (n: number) => `Revenue was 4.2 million, code HIGHLAND-${n}-body.`;
const MESSAGE_ID = (n: number) => `secret-mid-${n}@example`;

let pki: SecurityPki;
let dir: string;
let redis: TestRedis;
let milter: ServingMilter;
let env: Record<string, string>;
let httpPort: number;
let sent = 0;

function message(from: string, to: string): { n: number; bytes: Buffer } {
  const n = ++sent;
  return {
    n,
    bytes: Buffer.from(
      `From: ${from}\r\nTo: ${to}\r\nSubject: ${SUBJECT(n)}\r\nMessage-ID: <${MESSAGE_ID(n)}>\r\n\r\n${BODY(n)}\r\n`,
    ),
  };
}

async function p12Of(keyFile: string, certFile: string, out: string, passphrase: string) {
  await runToolOk(
    'openssl',
    ['pkcs12', '-export', '-in', certFile, '-inkey', keyFile, '-out', out].concat([
      '-passout',
      'env:DOMSEC_P12_PASS',
    ]),
    { env: { DOMSEC_P12_PASS: passphrase } },
  );
}

before(async () => {
  [pki, dir, redis] = await Promise.all([
    securityPki(),
    mkdtemp(join(tmpdir(), 'domsec-nosecrets-')),
    startRedis({ password: REDIS_PASSWORD }),
  ]);
  const keys = join(dir, 'keys');
  const work = join(dir, 'work');
  await Promise.all([mkdir(keys, { mode: 0o700 }), mkdir(work), mkdir(join(dir, 'partners'))]);
  const w = (path: string, text: string) => writeFile(path, text, { mode: 0o600 });
  // Signing key as PEM; encryption key as a p12 with a .pass file; the signing
  // pair once more as a p12 opened by DOMSEC_KEYS_PASSPHRASE.
  await w(join(keys, 'example.net.sign.key.pem'), keyPem(pki.net.signing.privateKey));
  await w(join(keys, 'example.net.sign.crt.pem'), certificatePem(pki.net.signing.certificate));
  await w(join(work, 'enc.key'), keyPem(pki.net.encryption.privateKey));
  await w(join(work, 'enc.crt'), certificatePem(pki.net.encryption.certificate));
  await p12Of(
    join(work, 'enc.key'),
    join(work, 'enc.crt'),
    join(keys, 'example.net.encrypt.p12'),
    FILE_PASSPHRASE,
  );
  await w(join(keys, 'example.net.encrypt.pass'), `${FILE_PASSPHRASE}\n`);
  await p12Of(
    join(keys, 'example.net.sign.key.pem'),
    join(keys, 'example.net.sign.crt.pem'),
    join(keys, 'example.net.spare.p12'),
    ENV_PASSPHRASE,
  );
  await rm(work, { recursive: true });
  await chmod(join(keys, 'example.net.spare.p12'), 0o600);
  await chmod(join(keys, 'example.net.encrypt.p12'), 0o600);
  await writeFile(
    join(dir, 'partners', 'example.org.pem'),
    certificatePem(pki.org.encryption.certificate),
  );
  httpPort = await freePort();
  env = {
    DOMSEC_LOCAL_DOMAINS: 'example.net',
    DOMSEC_KEYS_DIR: keys,
    DOMSEC_KEYS_PASSPHRASE: ENV_PASSPHRASE,
    DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
    DOMSEC_TRUST_ANCHORS: join(pki.dir, 'anchors.pem'),
    DOMSEC_TRUSTED_NETWORKS: TRUSTED_NETWORKS,
    DOMSEC_ENCRYPT_REQUIRED_DOMAINS: 'example.com',
    DOMSEC_AUTHSERV_ID: AUTHSERV_ID,
    DOMSEC_REDIS_URL: redis.url,
    DOMSEC_LOG_LEVEL: 'debug',
    DOMSEC_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
  };
  assert.ok(redis.url.includes(encodeURIComponent(REDIS_PASSWORD)));
  milter = await startServe(env);
});

after(async () => {
  await milter?.stop();
  await redis?.stop();
  await pki?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: httpPort, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

/** Every secret of the set-up, by what it is. */
function allSecrets(): Record<string, string[]> {
  return {
    'the Redis password': passwordForms(REDIS_PASSWORD),
    'the .pass passphrase': passwordForms(FILE_PASSPHRASE),
    'the DOMSEC_KEYS_PASSPHRASE passphrase': passwordForms(ENV_PASSPHRASE),
    'the signing key': keyFragments(pki.net.signing.privateKey),
    'the encryption key': keyFragments(pki.net.encryption.privateKey),
    'a message subject or body': messageForms(
      ...Array.from({ length: sent }, (_, i) => [SUBJECT(i + 1), BODY(i + 1)]).flat(),
    ),
  };
}

describe('no secret in logs, metrics or check-config', () => {
  before(async () => {
    const m = milterAt(milter.port);
    const outcomes: string[] = [];
    const go = async (bytes: Buffer, e: Parameters<typeof send>[2]) => {
      const o = await send(m, bytes, e);
      outcomes.push(`${o.stage} ${replyOf(o.decision)}`);
      return o;
    };
    // Outbound, signed and encrypted to example.org (a partner lookup: the Redis cache is used).
    const out = message('Carol <carol@example.net>', 'Alice <alice@example.org>');
    await go(out.bytes, {
      from: '<carol@example.net>',
      rcpts: ['<alice@example.org>'],
      address: INSIDE,
    });
    // Outbound refused at RCPT: example.com requires encryption and has no certificate.
    const refused = message('Carol <carol@example.net>', 'Dave <dave@example.com>');
    await go(refused.bytes, {
      from: '<carol@example.net>',
      rcpts: ['<dave@example.com>'],
      address: INSIDE,
    });
    // Inbound: decrypted and verified.
    const good = message('Alice <alice@example.org>', 'Bob <bob@example.net>');
    const goodProtected = await protectedByOrg(pki, good.bytes);
    await go(goodProtected, {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    // Inbound failures: encrypted to someone else, ciphertext with a flipped byte, garbage CMS,
    // a tampered signature, a spoofed result.
    const other = message('Alice <alice@example.org>', 'Bob <bob@example.net>');
    await go(await protectedByOrg(pki, other.bytes, {}, pki.com), {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    const flipped = message('Alice <alice@example.org>', 'Bob <bob@example.net>');
    const gcm = await protectedByOrg(pki, flipped.bytes, { cipher: 'aes-256-gcm' });
    const der = derOf(gcm);
    der[der.length - 40]! ^= 0xff;
    await go(withDer(gcm, der), {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    const garbage = message('Alice <alice@example.org>', 'Bob <bob@example.net>');
    await go(
      withDer(
        await protectedByOrg(pki, garbage.bytes),
        Buffer.from(`${SUBJECT(garbage.n)} ${BODY(garbage.n)}`),
      ),
      { from: '<alice@example.org>', rcpts: ['<bob@example.net>'], address: OUTSIDE },
    );
    const signed = message('Alice <alice@example.org>', 'Bob <bob@example.net>');
    const signedBytes = (await protectedByOrg(pki, signed.bytes, { encrypt: false })).toString(
      'latin1',
    );
    await go(Buffer.from(signedBytes.replace('Revenue was', 'Revenue WAS'), 'latin1'), {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    const spoofed = message('Alice <alice@example.org>', 'Bob <bob@example.net>');
    await go(
      Buffer.concat([
        Buffer.from(`Authentication-Results: ${AUTHSERV_ID}; smime=pass\r\n`),
        spoofed.bytes,
      ]),
      {
        from: '<alice@example.org>',
        rcpts: ['<bob@example.net>'],
        address: OUTSIDE,
      },
    );
    // The outcomes the messages were meant to have: the failures really failed.
    assert.deepEqual(outcomes, [
      'eom accept',
      'rcpt 550 5.7.1 encryption to example.com is required and no certificate is known',
      'eom accept',
      outcomes[3],
      outcomes[4],
      outcomes[5],
      'eom accept',
      'eom accept',
    ]);
    // Encrypted mail that fails is delivered as it came, never refused (no decryption oracle).
    for (const i of [3, 4, 5]) assert.equal(outcomes[i], 'eom accept');
  });

  it('the detector finds each secret in a dump of it (PEM, DER, JWK, URL, base64 body)', () => {
    const key = pki.net.encryption.privateKey;
    const dumps: Record<string, string> = {
      pem: keyPem(key),
      der: key.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      jwk: JSON.stringify(key.export({ format: 'jwk' })),
      url: redis.url,
      body: Buffer.from(`x${BODY(1)}`).toString('base64'),
    };
    for (const [what, dump] of Object.entries(dumps))
      assert.throws(() => assertNoneIn(dump, allSecrets(), what), /contains/, what);
  });

  it('the milter really used Redis with its password (the cache has our keys)', async () => {
    const metrics = await get('/metrics');
    assert.match(metrics, /^domsec_redis_up 1$/m);
    assert.match(metrics, /domsec_cache_requests_total\{cache="redis",result="(hit|miss)"\} [1-9]/);
  });

  it('the log (debug level, start to here) holds none of the secrets, subjects or bodies', () => {
    const log = milter.output();
    assert.ok(log.split('\n').filter((l) => l.includes('"msg":"message"')).length >= 7, log);
    assert.match(log, /decrypt-failure/, 'failures are logged, with their reasons');
    assertNoneIn(log, allSecrets(), 'the log');
  });

  it('/metrics holds none of the secrets, subjects or bodies', async () => {
    assertNoneIn(await get('/metrics'), allSecrets(), '/metrics');
  });

  it('/metrics label values come from bounded sets: no addresses, message ids, subjects', async () => {
    const text = await get('/metrics');
    const allowed: Record<string, (v: string) => boolean> = {
      direction: (v) => ['outbound', 'inbound', 'pass'].includes(v),
      outcome: (v) => ['ok', 'failed'].includes(v),
      // 'none', 'sign+encrypt', 'decrypted+verified', a failure kind or policy action.
      action: (v) => /^[a-z]+(?:[-+][a-z]+)*$/.test(v) && v.length <= 64,
      kind: (v) => /^[a-z]+(?:-[a-z]+)*$/.test(v),
      result: (v) => /^[a-z]+(?:-[a-z]+)*$/.test(v),
      reason: (v) =>
        [
          'not-encrypted-to-us',
          'decrypt-failed',
          'malformed-mime',
          'malformed-cms',
          'unsupported',
          'too-large',
          'internal',
        ].includes(v),
      source: (v) => /^[a-z]+(?:-[a-z]+)*$/.test(v),
      cache: (v) => ['memory', 'redis'].includes(v),
      method: (v) => /^[a-z]+$/.test(v),
      domain: (v) => v === 'example.net',
      usage: (v) => ['sign', 'encrypt.p12', 'spare.p12'].includes(v),
      le: (v) => /^(\+Inf|[0-9.e+-]+)$/.test(v),
    };
    const samples = text.split('\n').filter((l) => l.startsWith('domsec_'));
    assert.ok(samples.length > 10, text);
    let labelled = 0;
    for (const line of samples) {
      const labels = /\{(.*)\}/.exec(line)?.[1];
      if (!labels) continue;
      for (const [, name, value] of labels.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) {
        labelled++;
        if (line.startsWith('domsec_process_')) {
          // prom-client's process metrics: resource types, heap spaces, the Node version.
          assert.match(value!, /^[A-Za-z0-9._+-]*$/, line);
          continue;
        }
        const ok = allowed[name!];
        assert.ok(ok, `label ${name} of ${line} has no bounded set here: add it to this test`);
        assert.ok(ok(value!), `${line}: ${name}="${value}" is not from its bounded set`);
        assert.ok(!/[@<>]/.test(value!), `${line}: looks like an address`);
      }
    }
    assert.ok(labelled > 10);
    for (let n = 1; n <= sent; n++) assert.ok(!text.includes(MESSAGE_ID(n)), 'no message id');
  });

  it('check-config shows where secrets are configured, redacted, and none of them', async () => {
    const r = await runCli(['check-config'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^DOMSEC_REDIS_URL=\(redacted\)$/m);
    assert.match(r.stdout, /^DOMSEC_KEYS_PASSPHRASE=\(redacted\)$/m);
    assertNoneIn(r.stdout + r.stderr, allSecrets(), 'check-config');
  });

  it('the outbound message itself went out protected (the secrets test ran on real work)', async () => {
    const log = milter.output();
    assert.match(log, /"direction":"outbound","action":"sign\+encrypt","outcome":"ok"/);
    assert.match(log, /"direction":"inbound","action":"decrypted\+verified","outcome":"ok"/);
  });
});
