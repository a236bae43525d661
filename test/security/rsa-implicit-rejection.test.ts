// Bleichenbacher's oracle: if a PKCS#1 v1.5 key transport with bad padding
// answers differently from one with good padding, an attacker decrypts any
// captured message by asking ~a million questions. src/cms/rsa-pkcs1.ts
// answers both alike (implicit rejection): raw RSA, unpadding that never
// throws, and on bad padding a key derived from the ciphertext, with which
// the content decryption goes on and fails like any wrong key. Checked at
// three levels: the unpadding function, CMS decryption (same typed error,
// same text, same sequence of crypto calls), and the gateway (same SMTP
// reply, same Authentication-Results). No timing assertions: the machine is
// shared and noisy; equal outcomes and equal code paths are what is checked.
// (test/cms/cms.test.ts has the first unit checks of the same function.)
import assert from 'node:assert/strict';
import * as nodeCrypto from 'node:crypto';
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CmsError } from '../../src/cms/asn1.js';
import { type DecryptionKey, decryptEnvelope } from '../../src/cms/decrypt.js';
import { createEnvelope } from '../../src/cms/envelope.js';
import { decryptPkcs1KeyTransport } from '../../src/cms/rsa-pkcs1.js';
import type { MilterOutcome } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';
import {
  addedResults,
  assertNoPlaintext,
  derOf,
  OUTSIDE,
  protectedByOrg,
  type SecurityPki,
  securityPki,
  send,
  startUs,
  uniqueOffset,
  withDer,
} from '../helpers/security-fixture.js';

const K = 256; // RSA-2048 modulus length in bytes
const CEK = 32; // AES-256 key length
/** rsaEncryption AlgorithmIdentifier (with NULL) then the OCTET STRING header of a 256-byte encryptedKey. */
const KTRI_KEY = Buffer.from('06092a864886f70d0101010500' + '04820100', 'hex');
const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nsecret figures 4471\r\n');

let pki: SecurityPki;
let ours: DecryptionKey;

before(async () => {
  pki = await securityPki();
  ours = { certificate: pki.net.encryption.certificate, privateKey: pki.net.encryption.privateKey };
});

after(async () => {
  await pki?.cleanup();
});

const rsaPublic = () => pki.net.encryption.certificate.publicKey;

/** Textbook RSA of an encoded message we chose (the attacker can: the key is public). */
function rawEncrypt(em: Buffer): Buffer {
  assert.equal(em.length, K);
  return publicEncrypt({ key: rsaPublic(), padding: constants.RSA_NO_PADDING }, em);
}

/** A standard v1.5 block around `m` (good padding; right length only when |m| = 32). */
const v15 = (m: Buffer): Buffer =>
  publicEncrypt({ key: rsaPublic(), padding: constants.RSA_PKCS1_PADDING }, m);

function nonZero(n: number): Buffer {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) if (b[i] === 0) b[i] = 1;
  return b;
}

/** EM = first || second || PS || 0x00 || M with |M| = 32, unless told otherwise. */
function em(
  first: number,
  second: number,
  opts: { zeroInPsAt?: number; noSeparator?: boolean } = {},
) {
  const e = Buffer.concat([
    Buffer.from([first, second]),
    nonZero(K - 2 - 1 - CEK),
    Buffer.from([0]),
    randomBytes(CEK),
  ]);
  if (opts.noSeparator) e[K - CEK - 1] = 0x5a;
  if (opts.zeroInPsAt !== undefined) e[opts.zeroInPsAt] = 0;
  return e;
}

/** Encrypted keys that must all come out as "a wrong key", by category. */
function invalidKeys(): Record<string, Buffer> {
  return {
    'good padding, wrong key (control)': v15(randomBytes(CEK)),
    'encrypted to another RSA key': publicEncrypt(
      { key: pki.com.encryption.certificate.publicKey, padding: constants.RSA_PKCS1_PADDING },
      randomBytes(CEK),
    ),
    'bad padding: block type 01': rawEncrypt(em(0, 1)),
    'bad padding: block type 00': rawEncrypt(em(0, 0)),
    'bad padding: first byte not zero': rawEncrypt(em(1, 2)),
    'bad padding: no zero separator': rawEncrypt(em(0, 2, { noSeparator: true })),
    'bad padding: zero inside the padding string': rawEncrypt(em(0, 2, { zeroInPsAt: 5 })),
    'bad padding: padding string shorter than 8 bytes': rawEncrypt(
      Buffer.concat([Buffer.from([0, 2]), nonZero(3), Buffer.from([0]), randomBytes(K - 6)]),
    ),
    'good padding, wrong length: 0 bytes': v15(Buffer.alloc(0)),
    'good padding, wrong length: 16 bytes': v15(randomBytes(16)),
    'good padding, wrong length: 24 bytes': v15(randomBytes(24)),
    'good padding, wrong length: 31 bytes': v15(randomBytes(31)),
    'good padding, wrong length: 33 bytes': v15(randomBytes(33)),
    'good padding, wrong length: 245 bytes': v15(randomBytes(245)),
    'not below the modulus (all 0xff)': Buffer.alloc(K, 0xff),
    zero: Buffer.alloc(K),
    random: randomBytes(K),
  };
}

/** AuthEnvelopedData (AES-256-GCM: a wrong key always fails its tag) with v1.5 key transport to us. */
function envelope(): { der: Buffer; keyAt: number } {
  const der = createEnvelope(
    CONTENT,
    [{ certificate: pki.net.encryption.certificate, keyTransport: 'rsa-pkcs1' }],
    { cipher: 'aes-256-gcm' },
  );
  return { der, keyAt: uniqueOffset(der, KTRI_KEY) + KTRI_KEY.length };
}

function withKey(e: { der: Buffer; keyAt: number }, encryptedKey: Buffer): Buffer {
  assert.equal(encryptedKey.length, K);
  const copy = Buffer.from(e.der);
  encryptedKey.copy(copy, e.keyAt);
  return copy;
}

/** The outward result of decrypting: the typed error and its text, or "decrypted". */
function outcome(der: Buffer): string {
  try {
    decryptEnvelope(der, [ours]);
    return 'decrypted';
  } catch (err) {
    assert.ok(err instanceof CmsError, `not a CmsError: ${String(err)}`);
    return `${err.code}: ${err.message}`;
  }
}

describe('RSA PKCS#1 v1.5 implicit rejection: the unpadding', () => {
  it('every invalid block gives a key of the expected length, deterministically, never an error', () => {
    for (const [name, ct] of Object.entries(invalidKeys())) {
      const a = decryptPkcs1KeyTransport(ours.privateKey, ct, CEK);
      assert.equal(a.length, CEK, name);
      assert.ok(
        a.equals(decryptPkcs1KeyTransport(ours.privateKey, ct, CEK)),
        `${name}: same key again`,
      );
    }
  });

  it('ciphertexts of the wrong size (0, 1, 255, 257, 512 bytes) give a key too, not an error', () => {
    for (const n of [0, 1, 255, 257, 512]) {
      assert.equal(decryptPkcs1KeyTransport(ours.privateKey, randomBytes(n), CEK).length, CEK);
    }
  });

  it('the key for bad padding is not the tail of the decrypted block (masked), and differs per ciphertext', () => {
    const seen = new Set<string>();
    for (const ct of [
      rawEncrypt(em(0, 1)),
      rawEncrypt(em(0, 1)),
      rawEncrypt(em(0, 2, { noSeparator: true })),
    ]) {
      const block = nodeCrypto.privateDecrypt(
        { key: ours.privateKey, padding: constants.RSA_NO_PADDING },
        ct,
      );
      const key = decryptPkcs1KeyTransport(ours.privateKey, ct, CEK);
      assert.ok(!key.equals(block.subarray(K - CEK)), 'not the unchecked message bytes');
      seen.add(key.toString('hex'));
    }
    assert.equal(seen.size, 3, 'a pseudo-random key per ciphertext');
  });

  it('property: any 256 random bytes give a 32-byte key without throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: K, maxLength: K }), (bytes) => {
        const key = decryptPkcs1KeyTransport(ours.privateKey, Buffer.from(bytes), CEK);
        return key.length === CEK;
      }),
      { numRuns: 200 },
    );
  });
});

describe('RSA PKCS#1 v1.5 implicit rejection: CMS decryption', () => {
  it('control: the untouched envelope decrypts', () => {
    assert.equal(outcome(envelope().der), 'decrypted');
  });

  it('bad padding, good padding of the wrong length and a wrong key: one typed error, one text', () => {
    const e = envelope();
    const results = Object.entries(invalidKeys()).map(([name, key]) => [
      name,
      outcome(withKey(e, key)),
    ]);
    const reference = results[0]![1];
    assert.match(reference!, /^decrypt-failed: /);
    assert.doesNotMatch(
      reference!,
      /padding|pkcs|length|block|rsa/i,
      'nothing about the key transport',
    );
    for (const [name, r] of results) assert.equal(r, reference, name);
  });

  it('property: random invalid encrypted keys (random bytes, or good padding of a random wrong length) all end as the wrong key does', () => {
    const e = envelope();
    const reference = outcome(withKey(e, v15(randomBytes(CEK))));
    const invalid = fc.oneof(
      fc.uint8Array({ minLength: K, maxLength: K }).map((b) => Buffer.from(b)),
      fc
        .integer({ min: 0, max: K - 11 })
        .filter((n) => n !== CEK)
        .map((n) => v15(randomBytes(n))),
    );
    fc.assert(
      fc.property(invalid, (key) => outcome(withKey(e, key)) === reference),
      { numRuns: 150 },
    );
  });
});

/** Records the calls decryption makes into node:crypto (ESM bindings re-synced to the wrappers). */
function recordCryptoCalls<T>(fn: () => T): {
  result: T | Error;
  calls: string[];
  contentKeys: Buffer[];
} {
  const cjs = createRequire(import.meta.url)('node:crypto') as typeof nodeCrypto;
  const original = {
    privateDecrypt: cjs.privateDecrypt,
    createHmac: cjs.createHmac,
    createDecipheriv: cjs.createDecipheriv,
  };
  const calls: string[] = [];
  const contentKeys: Buffer[] = [];
  const mutable = cjs as unknown as Record<string, unknown>;
  mutable['privateDecrypt'] = (key: nodeCrypto.RsaPrivateKey, buf: Buffer) => {
    calls.push(`privateDecrypt(padding=${key.padding})`);
    return original.privateDecrypt(key, buf);
  };
  mutable['createHmac'] = (...args: Parameters<typeof nodeCrypto.createHmac>) => {
    calls.push(`createHmac(${String(args[0])})`);
    return original.createHmac(...args);
  };
  mutable['createDecipheriv'] = (alg: string, key: Buffer, ...rest: unknown[]) => {
    calls.push(`createDecipheriv(${alg}, ${key.length}-byte key)`);
    contentKeys.push(Buffer.from(key));
    return (original.createDecipheriv as (...a: unknown[]) => unknown)(alg, key, ...rest);
  };
  syncBuiltinESMExports();
  try {
    let result: T | Error;
    try {
      result = fn();
    } catch (err) {
      result = err as Error;
    }
    return { result, calls, contentKeys };
  } finally {
    Object.assign(mutable, original);
    syncBuiltinESMExports();
  }
}

describe('RSA PKCS#1 v1.5 implicit rejection: the same code path (instrumented)', () => {
  it('instrumentation works: the wrapped functions see the calls of src/cms', () => {
    const r = recordCryptoCalls(() => decryptEnvelope(envelope().der, [ours]));
    assert.ok(!(r.result instanceof Error));
    assert.ok(r.calls.length > 0);
    // And is undone.
    assert.equal(recordCryptoCalls(() => 1).calls.length, 0);
  });

  it('valid, bad padding, wrong length, wrong key: the same sequence of crypto calls; raw RSA only; content decryption always attempted', () => {
    const e = envelope();
    const cases: Record<string, Buffer> = { valid: e.der };
    for (const [name, key] of Object.entries(invalidKeys())) cases[name] = withKey(e, key);
    const sequences = Object.entries(cases).map(([name, der]) => {
      decryptPkcs1KeyTransport(ours.privateKey, Buffer.alloc(K), CEK); // per-key secret cached outside the record
      const r = recordCryptoCalls(() => decryptEnvelope(der, [ours]));
      assert.equal(r.contentKeys.length, 1, `${name}: the content decryption went on with a key`);
      assert.equal(r.contentKeys[0]!.length, CEK, name);
      return [name, r.calls.join(' -> ')] as const;
    });
    const [, reference] = sequences[0]!;
    assert.equal(
      reference,
      `privateDecrypt(padding=${constants.RSA_NO_PADDING}) -> createHmac(sha256) -> createDecipheriv(aes-256-gcm, 32-byte key)`,
    );
    for (const [name, calls] of sequences) assert.equal(calls, reference, name);
  });

  it('bad padding: the content is decrypted with the pseudo-random key the unpadding derived', () => {
    const e = envelope();
    for (const key of [
      rawEncrypt(em(0, 1)),
      v15(randomBytes(16)),
      rawEncrypt(em(0, 2, { noSeparator: true })),
    ]) {
      const r = recordCryptoCalls(() => decryptEnvelope(withKey(e, key), [ours]));
      assert.ok(r.contentKeys[0]!.equals(decryptPkcs1KeyTransport(ours.privateKey, key, CEK)));
    }
  });
});

describe('RSA PKCS#1 v1.5 implicit rejection: the gateway', () => {
  let defaults: TestMilter;
  let accepting: TestMilter;
  let captured: Buffer;
  let keyAt: number;

  before(async () => {
    defaults = await startUs(pki);
    accepting = await startUs(pki, { DOMSEC_ON_DECRYPT_FAILURE: 'accept' });
    captured = await protectedByOrg(pki, undefined, {
      cipher: 'aes-256-gcm',
      keyTransport: 'rsa-pkcs1',
    });
    keyAt = uniqueOffset(derOf(captured), KTRI_KEY) + KTRI_KEY.length;
  });

  after(async () => {
    await defaults?.close();
    await accepting?.close();
  });

  const withEncryptedKey = (encryptedKey: Buffer): Buffer =>
    withDer(captured, withKey({ der: derOf(captured), keyAt }, encryptedKey));

  const deliver = (m: TestMilter, message: Buffer): Promise<MilterOutcome> =>
    send(m, message, {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });

  it('control: the captured message decrypts', async () => {
    const o = await deliver(defaults, captured);
    assert.equal(o.decision?.type, 'accept');
    assert.match(addedResults(o)[0] ?? '', /smime=pass/);
  });

  it('default policy: the same SMTP reply and edits for bad padding, wrong length and a wrong key', async () => {
    const seen: [string, string][] = [];
    for (const [name, key] of Object.entries(invalidKeys())) {
      const o = await deliver(defaults, withEncryptedKey(key));
      assertNoPlaintext(o);
      assert.equal(o.decision?.type, 'accept', name);
      seen.push([name, JSON.stringify(o.edits)]);
    }
    const reference = seen[0]![1];
    assert.match(reference, /smime=permerror/);
    for (const [name, edits] of seen) assert.equal(edits, reference, name);
  });

  it('DOMSEC_ON_DECRYPT_FAILURE=accept: the same edits and the same Authentication-Results for all', async () => {
    const seen: [string, string][] = [];
    for (const [name, key] of Object.entries(invalidKeys())) {
      const o = await deliver(accepting, withEncryptedKey(key));
      assert.equal(o.decision?.type, 'accept', name);
      seen.push([name, JSON.stringify(o.edits)]);
    }
    const reference = seen[0]![1];
    assert.match(reference, /smime=permerror/);
    for (const [name, edits] of seen) assert.equal(edits, reference, name);
  });
});
