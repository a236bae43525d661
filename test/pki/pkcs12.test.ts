// PKCS#12 identities: files made by the real `openssl pkcs12 -export`
// (OpenSSL 3 defaults, -legacy variants), read by src/pki/pkcs12.ts and
// loaded from DOMSEC_KEYS_DIR by src/pki/identities.ts; the keys then sign
// and decrypt through the S/MIME engine, and `openssl cms` checks the result.
import assert from 'node:assert/strict';
import { createPrivateKey, sign, verify } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { loadCertificatesPem, pemBlocks } from '../../src/cms/certificate.js';
import { OID } from '../../src/cms/oids.js';
import { IdentityError, loadIdentities } from '../../src/pki/identities.js';
import { generateDomainPki } from '../../src/pki/keygen.js';
import { PKCS12_MAX_BYTES, Pkcs12Error, readPkcs12 } from '../../src/pki/pkcs12.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { TransformResult } from '../../src/smime/types.js';
import { startServe } from '../helpers/cli.js';
import { cmsVerify, runTool, runToolOk } from '../helpers/openssl.js';
import { createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';

const PASS = 'correct horse battery staple';
const WRONG = 'Tr0ub4dor&3';
const DAY = 86_400_000;
const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: p12\r\n' +
    'Message-ID: <p12@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n' +
    'Signed with a key from a PKCS#12 file.\r\n',
);

const ok = (r: TransformResult): Buffer => {
  assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
  return r.message;
};

/** `openssl pkcs12 -export` of a leaf with its key and `certs` (PEM), passphrase via env. */
async function exportP12(
  out: string,
  leaf: TestLeaf | undefined,
  opts: { certsPem?: string; keyPath?: string | null; extra?: string[]; passphrase?: string } = {},
): Promise<string> {
  const args = ['pkcs12', '-export', '-out', out, '-passout', 'env:P12_PASS'];
  if (leaf) args.push('-in', leaf.certPath);
  // keyPath null: no key at all (-nokeys).
  const keyPath = opts.keyPath === undefined ? leaf?.keyPath : opts.keyPath;
  if (keyPath) args.push('-inkey', keyPath);
  if (opts.certsPem) {
    await writeFile(`${out}.certs.pem`, opts.certsPem);
    args.push('-certfile', `${out}.certs.pem`);
  }
  args.push(...(opts.extra ?? []));
  await runToolOk('openssl', args, { env: { P12_PASS: opts.passphrase ?? PASS } });
  return out;
}

/** What `openssl pkcs12 -info` says about a file's algorithms. */
async function p12Info(path: string, passphrase = PASS): Promise<string> {
  const args = ['pkcs12', '-in', path, '-info', '-noout', '-passin', 'env:P12_PASS', '-legacy'];
  const r = await runToolOk('openssl', args, { env: { P12_PASS: passphrase } });
  return r.stderr + r.stdout.toString('utf8');
}

/**
 * A PKCS#12 built with pkijs, for layouts `openssl pkcs12 -export` cannot
 * make: several keys, certificates in any order, a different passphrase for
 * the encryption than for the MAC (what -twopass does). Key bags unencrypted,
 * the safe contents AES-256-CBC encrypted only with `encryptWith`; SHA-256
 * MAC, `macIterations` overrides the count written after the MAC.
 */
async function pkijsP12(
  keysPem: readonly string[],
  certsPem: readonly string[],
  passphrase: string,
  opts: { macIterations?: number; encryptWith?: string } = {},
): Promise<Buffer> {
  const bags = [
    ...keysPem.map(
      (pem) =>
        new pkijs.SafeBag({
          bagId: OID.pkcs12KeyBag,
          bagValue: pkijs.PrivateKeyInfo.fromBER(pemBlocks(pem, 'PRIVATE KEY')[0]!),
        }),
    ),
    ...certsPem.map(
      (pem) =>
        new pkijs.SafeBag({
          bagId: OID.pkcs12CertBag,
          bagValue: new pkijs.CertBag({
            parsedValue: pkijs.Certificate.fromBER(pemBlocks(pem, 'CERTIFICATE')[0]!),
          }),
        }),
    ),
  ];
  const safe = new pkijs.AuthenticatedSafe({
    parsedValue: {
      safeContents: [
        {
          privacyMode: opts.encryptWith === undefined ? 0 : 1,
          value: new pkijs.SafeContents({ safeBags: bags }),
        },
      ],
    },
  });
  await safe.makeInternalValues({
    safeContents: [
      opts.encryptWith === undefined
        ? {}
        : {
            password: new TextEncoder().encode(opts.encryptWith).buffer,
            contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 },
            hmacHashAlgorithm: 'SHA-256',
            iterationCount: 2048,
          },
    ],
  });
  const pfx = new pkijs.PFX({ parsedValue: { integrityMode: 0, authenticatedSafe: safe } });
  await pfx.makeInternalValues({
    password: new TextEncoder().encode(passphrase).buffer,
    iterations: 2048,
    pbkdf2HashAlgorithm: 'SHA-256',
    hmacHashAlgorithm: 'SHA-256',
  });
  if (opts.macIterations !== undefined && pfx.macData) pfx.macData.iterations = opts.macIterations;
  return Buffer.from(pfx.toSchema().toBER(false));
}

async function rejectsWith(
  promise: Promise<unknown>,
  reason: string,
  pattern: RegExp,
): Promise<Pkcs12Error> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof Pkcs12Error, `not a Pkcs12Error: ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.match(caught.message, pattern);
  assert.doesNotMatch(caught.message, /\n/, 'one line');
  return caught;
}

const sameKey = (a: ReturnType<typeof createPrivateKey>, pem: string) =>
  assert.deepEqual(
    a.export({ format: 'der', type: 'pkcs8' }),
    createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' }),
  );

let dir = '';
let root: TestCa;
let intermediate: TestCa;
let rsa: TestLeaf;
let ec: TestLeaf;
let rsaP12 = '';
let ecP12 = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-p12-'));
  root = await createTestCa(dir, 'P12 Root');
  intermediate = await root.issueIntermediate('P12 Intermediate');
  [rsa, ec] = await Promise.all([
    intermediate.issue({
      commonName: 'Domain signing authority example.org',
      rfc822Names: ['domain-signing-authority@example.org'],
      dnsNames: ['example.org'],
      algo: 'rsa-2048',
    }),
    intermediate.issue({
      commonName: 'Domain EC authority example.org',
      rfc822Names: ['domain-confidentiality-authority@example.org'],
      dnsNames: ['example.org'],
      algo: 'ec-p256',
    }),
  ]);
  // The test helper's export: leaf, key, intermediate and root, OpenSSL 3 defaults.
  [rsaP12, ecP12] = await Promise.all([rsa.p12Path(PASS), ec.p12Path(PASS)]);
});
after(() => rm(dir, { recursive: true, force: true }));

describe('readPkcs12: files from openssl pkcs12 -export', () => {
  for (const [algo, leaf, file] of [
    ['RSA', () => rsa, () => rsaP12],
    ['EC P-256', () => ec, () => ecP12],
  ] as const) {
    test(`${algo}, OpenSSL 3 defaults: key, leaf and chain (intermediate, then root)`, async () => {
      const info = await p12Info(file());
      assert.match(info, /MAC: sha256/);
      assert.match(info, /PBES2, PBKDF2, AES-256-CBC.*PRF hmacWithSHA256/);
      const pairs = await readPkcs12(await readFile(file()), PASS, file());
      assert.equal(pairs.length, 1);
      const [p] = pairs;
      assert.equal(p!.certificate.fingerprint, loadCertificatesPem(leaf().certPem)[0]!.fingerprint);
      assert.deepEqual(
        p!.chain.map((c) => c.x509.subject),
        ['O=domsec test\nCN=P12 Intermediate', 'O=domsec test\nCN=P12 Root'],
      );
      sameKey(p!.privateKey, leaf().keyPem);
      const signature = sign('sha256', Buffer.from('x'), p!.privateKey);
      assert.ok(verify('sha256', Buffer.from('x'), p!.certificate.publicKey, signature));
    });
  }

  test('-legacy with triple-DES for keys and certificates works', async () => {
    const path = await exportP12(join(dir, 'legacy-3des.p12'), rsa, {
      certsPem: intermediate.certPem,
      extra: ['-legacy', '-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES'],
    });
    assert.match(await p12Info(path), /pbeWithSHA1And3-KeyTripleDES-CBC/);
    const [p] = await readPkcs12(await readFile(path), PASS, path);
    sameKey(p!.privateKey, rsa.keyPem);
    assert.equal(p!.chain.length, 1);
  });

  test('a non-ASCII passphrase: UTF-8 for PBKDF2, UTF-16 for the MAC and triple-DES', async () => {
    const passphrase = 'Grüße, € und 𝄞';
    for (const extra of [[], ['-legacy', '-certpbe', 'PBE-SHA1-3DES']]) {
      const path = await exportP12(join(dir, `utf8-${extra.length}.p12`), ec, {
        extra,
        passphrase,
      });
      const [p] = await readPkcs12(await readFile(path), passphrase, path);
      sameKey(p!.privateKey, ec.keyPem);
      await rejectsWith(
        readPkcs12(await readFile(path), 'Grusse, € und 𝄞', path),
        'wrong-passphrase',
        /wrong passphrase/,
      );
    }
  });

  test('plain -legacy (RC2-40 certificates): a clear error saying to re-export without -legacy', async () => {
    const path = await rsa.p12Path(PASS, true);
    assert.match(await p12Info(path), /pbeWithSHA1And40BitRC2-CBC/);
    const err = await rejectsWith(
      readPkcs12(await readFile(path), PASS, path),
      'unsupported',
      /RC2\/RC4 encryption \(openssl pkcs12 -legacy\).*re-export the file without -legacy/,
    );
    assert.ok(err.message.startsWith(`${path}: `));
  });

  test('unencrypted key and certificate bags (-keypbe NONE -certpbe NONE) with a MAC', async () => {
    const path = await exportP12(join(dir, 'none.p12'), ec, {
      extra: ['-keypbe', 'NONE', '-certpbe', 'NONE'],
    });
    const [p] = await readPkcs12(await readFile(path), PASS, path);
    sameKey(p!.privateKey, ec.keyPem);
  });

  test('a wrong passphrase: one line naming the file, without either passphrase', async () => {
    const err = await rejectsWith(
      readPkcs12(await readFile(rsaP12), WRONG, rsaP12),
      'wrong-passphrase',
      /wrong passphrase/,
    );
    assert.ok(err.message.includes(rsaP12));
    assert.ok(!err.message.includes(WRONG) && !err.message.includes(PASS));
  });

  test('no MAC (-nomac): refused, there is no integrity check', async () => {
    const path = await exportP12(join(dir, 'nomac.p12'), rsa, { extra: ['-nomac'] });
    await rejectsWith(readPkcs12(await readFile(path), PASS, path), 'unsupported', /no MAC/);
  });

  test('truncated, garbage, empty, PEM instead of DER, oversized: clear errors, no crash', async () => {
    const good = await readFile(rsaP12);
    const cases: [string, Buffer, string][] = [
      ['truncated', good.subarray(0, Math.floor(good.length / 2)), 'malformed'],
      ['last byte missing', good.subarray(0, good.length - 1), 'malformed'],
      ['garbage', Buffer.from('this is not a PKCS#12 file at all, just text\n'), 'malformed'],
      ['empty', Buffer.alloc(0), 'malformed'],
      ['PEM', Buffer.from(rsa.certPem), 'malformed'],
      ['a certificate', pemBlocks(rsa.certPem, 'CERTIFICATE')[0]!, 'malformed'],
      ['oversized', Buffer.alloc(PKCS12_MAX_BYTES + 1, 0x30), 'too-large'],
    ];
    for (const [what, bytes, reason] of cases) {
      const err = await rejectsWith(readPkcs12(bytes, PASS, `${what}.p12`), reason, /./);
      assert.ok(err.message.startsWith(`${what}.p12: `), err.message);
    }
    // A flipped byte inside the authenticated content fails the MAC.
    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length / 2)]! ^= 0x01;
    await assert.rejects(readPkcs12(flipped, PASS, 'flipped.p12'), Pkcs12Error);
  });

  test('only a key (-nocerts), only certificates (-nokeys): refused', async () => {
    const keyOnly = await exportP12(join(dir, 'key-only.p12'), undefined, {
      keyPath: rsa.keyPath,
      extra: ['-nocerts'],
    });
    await rejectsWith(
      readPkcs12(await readFile(keyOnly), PASS, keyOnly),
      'unpaired-key',
      /1 private key\(s\) without a matching certificate/,
    );
    const certsOnly = await exportP12(join(dir, 'certs-only.p12'), rsa, {
      keyPath: null,
      extra: ['-nokeys'],
    });
    await rejectsWith(
      readPkcs12(await readFile(certsOnly), PASS, certsOnly),
      'no-key',
      /no private key/,
    );
  });

  test('several pairs in one file, certificates before keys and leaves last: paired by public key', async () => {
    const bytes = await pkijsP12(
      [ec.keyPem, rsa.keyPem],
      [root.certPem, intermediate.certPem, rsa.certPem, ec.certPem],
      PASS,
    );
    const path = join(dir, 'two-pairs.p12');
    await writeFile(path, bytes);
    assert.match(await p12Info(path), /MAC: sha256/, 'OpenSSL accepts the file');
    const pairs = await readPkcs12(bytes, PASS, path);
    assert.equal(pairs.length, 2);
    for (const p of pairs) {
      const leaf = p.certificate.publicKey.asymmetricKeyType === 'rsa' ? rsa : ec;
      assert.equal(p.certificate.fingerprint, loadCertificatesPem(leaf.certPem)[0]!.fingerprint);
      sameKey(p.privateKey, leaf.keyPem);
      assert.deepEqual(
        p.chain.map((c) => c.x509.subject),
        ['O=domsec test\nCN=P12 Intermediate', 'O=domsec test\nCN=P12 Root'],
      );
    }
  });

  test('a key whose certificate is missing is refused even beside a complete pair', async () => {
    const bytes = await pkijsP12([rsa.keyPem, ec.keyPem], [rsa.certPem], PASS);
    await rejectsWith(readPkcs12(bytes, PASS, 'half.p12'), 'unpaired-key', /without a matching/);
  });

  test('a MAC asking for more iterations than the limit is refused before any work', async () => {
    const bytes = await pkijsP12([rsa.keyPem], [rsa.certPem], PASS, { macIterations: 50_000_000 });
    const started = Date.now();
    await rejectsWith(readPkcs12(bytes, PASS, 'slow.p12'), 'unsupported', /50000000 iterations/);
    assert.ok(Date.now() - started < 1000);
  });

  test('MAC passphrase right, encryption passphrase different (-twopass): a clear error', async () => {
    const bytes = await pkijsP12([ec.keyPem], [ec.certPem], PASS, { encryptWith: 'other' });
    const path = join(dir, 'twopass.p12');
    await writeFile(path, bytes);
    // OpenSSL agrees: the MAC passes, the decryption fails.
    const tool = await runTool(
      'openssl',
      ['pkcs12', '-in', path, '-info', '-noout', '-passin', 'env:P'],
      {
        env: { P: PASS },
      },
    );
    assert.notEqual(tool.code, 0);
    assert.match(tool.stderr, /MAC: sha256[\s\S]*bad decrypt/);
    const same = await pkijsP12([ec.keyPem], [ec.certPem], PASS, { encryptWith: PASS });
    await writeFile(join(dir, 'onepass.p12'), same);
    assert.match(await p12Info(join(dir, 'onepass.p12')), /PBES2, PBKDF2, AES-256-CBC/);
    sameKey((await readPkcs12(same, PASS, 'same.p12'))[0]!.privateKey, ec.keyPem);
    await rejectsWith(
      readPkcs12(bytes, PASS, path),
      'wrong-passphrase',
      /cannot decrypt the encrypted section \(certificates\) \(a different passphrase or damaged data\)/,
    );
  });

  test('PBES2 with a cipher WebCrypto lacks (-keypbe des-ede3-cbc): a clear error', async () => {
    const path = await exportP12(join(dir, 'pbes2-3des.p12'), ec, {
      extra: ['-keypbe', 'des-ede3-cbc'],
    });
    assert.match(await p12Info(path), /PBES2, PBKDF2, DES-EDE3-CBC/);
    await rejectsWith(
      readPkcs12(await readFile(path), PASS, path),
      'unsupported',
      /cannot decrypt the private key: PBES2 with cipher 1\.2\.840\.113549\.3\.7/,
    );
  });

  test('PBKDF2 iterations above the limit are refused (the MAC itself being cheap)', async () => {
    const path = await exportP12(join(dir, 'many-iterations.p12'), ec, {
      extra: ['-iter', '1000001', '-nomaciter'],
    });
    assert.match(await p12Info(path), /Iteration 1000001/);
    await rejectsWith(
      readPkcs12(await readFile(path), PASS, path),
      'unsupported',
      /asks for 1000001 iterations \(allowed 1\.\.1000000\)/,
    );
  });

  test('a BER (indefinite-length) file decodes like its DER form', async () => {
    // Re-encode the outer PFX SEQUENCE with indefinite length: some tools write BER.
    const der = await readFile(rsaP12);
    const parsed = asn1js.fromBER(der).result as asn1js.Sequence;
    parsed.lenBlock.isIndefiniteForm = true;
    const ber = Buffer.from(parsed.toBER(false));
    assert.notDeepEqual(ber, der);
    const [p] = await readPkcs12(ber, PASS, 'ber.p12');
    sameKey(p!.privateKey, rsa.keyPem);
  });
});

describe('PKCS#12 identities in DOMSEC_KEYS_DIR', () => {
  let keys = '';
  let n = 0;
  /** A fresh keys directory with the given files (mode 600 unless told). */
  async function keysDir(files: Record<string, string | Buffer | [string | Buffer, number]>) {
    keys = join(dir, `keys-${++n}`);
    await rm(keys, { recursive: true, force: true });
    await mkdir(keys, { mode: 0o700 });
    for (const [name, spec] of Object.entries(files)) {
      const [content, mode] = Array.isArray(spec) ? spec : [spec, 0o600];
      await writeFile(join(keys, name), content);
      await chmod(join(keys, name), mode);
    }
    return keys;
  }

  async function identityError(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
    let caught: unknown;
    await assert.rejects(promise, (err: unknown) => {
      caught = err;
      return true;
    });
    assert.ok(caught instanceof IdentityError, `not an IdentityError: ${String(caught)}`);
    assert.match(caught.message, pattern);
    assert.doesNotMatch(caught.message, /\n/, 'one line');
    return caught.message;
  }

  test('<domain>.p12 with DOMSEC_KEYS_PASSPHRASE: signer, chain and decryption key as from PEM', async () => {
    const d = await keysDir({ 'example.org.p12': await readFile(rsaP12) });
    const fromP12 = (await loadIdentities(d, ['example.org'], { passphrase: PASS })).get(
      'example.org',
    )!;
    const pem = await keysDir({
      'example.org.key.pem': rsa.keyPem,
      'example.org.crt.pem': rsa.certPem + intermediate.certPem + root.certPem,
    });
    const fromPem = (await loadIdentities(pem, ['example.org'])).get('example.org')!;
    assert.equal(fromP12.keys[0]!.label, 'default.p12');
    assert.equal(fromP12.signer?.certificate, fromPem.signer?.certificate, 'same parsed object');
    assert.deepEqual(fromP12.signer?.chain, fromPem.signer?.chain);
    sameKey(fromP12.signer!.privateKey, rsa.keyPem);
    assert.equal(fromP12.decryptionKeys.length, 1);
    assert.equal(fromP12.expires?.getTime(), fromPem.expires?.getTime());
  });

  test('no passphrase at all: names the file and both ways to give one', async () => {
    const d = await keysDir({ 'example.org.p12': await readFile(rsaP12) });
    const message = await identityError(loadIdentities(d, ['example.org']), /no passphrase/);
    assert.ok(message.includes(join(d, 'example.org.p12')));
    assert.ok(message.includes(join(d, 'example.org.pass')));
    assert.match(message, /DOMSEC_KEYS_PASSPHRASE/);
  });

  test('a .pass file beside it works alone and wins over DOMSEC_KEYS_PASSPHRASE', async () => {
    const d = await keysDir({
      'example.org.sign.p12': await readFile(rsaP12),
      'example.org.sign.pass': `${PASS}\n`,
      'example.org.encrypt.p12': await exportP12(join(dir, 'ec-own.p12'), ec, {
        passphrase: 'another one',
      }).then((p) => readFile(p)),
    });
    // The encrypt file has no .pass: the fallback opens it; sign.pass wins for sign.
    const id = (await loadIdentities(d, ['example.org'], { passphrase: 'another one' })).get(
      'example.org',
    )!;
    assert.deepEqual(id.keys.map((k) => k.label).sort(), ['encrypt.p12', 'sign.p12']);
    await rm(join(d, 'example.org.encrypt.p12'));
    const alone = (await loadIdentities(d, ['example.org'])).get('example.org')!;
    assert.equal(alone.keys[0]!.label, 'sign.p12');
  });

  test('a wrong passphrase: one line with the file, neither passphrase, no key material', async () => {
    const d = await keysDir({
      'example.org.p12': await readFile(rsaP12),
      'example.org.pass': WRONG,
    });
    const message = await identityError(
      loadIdentities(d, ['example.org'], { passphrase: PASS }),
      /wrong passphrase/,
    );
    assert.ok(message.includes(join(d, 'example.org.p12')));
    assert.ok(!message.includes(WRONG) && !message.includes(PASS));
    const keyBase64 = rsa.keyPem.split('\n').filter((l) => l.length > 40);
    assert.ok(!keyBase64.some((l) => message.includes(l.slice(0, 16))));
    assert.doesNotMatch(message, /PRIVATE KEY|BEGIN/);
  });

  test('a .pass file readable by others is refused, like a key file', async () => {
    const d = await keysDir({
      'example.org.p12': await readFile(rsaP12),
      'example.org.pass': [PASS, 0o644],
    });
    const message = await identityError(
      loadIdentities(d, ['example.org'], { passphrase: PASS }),
      /grants group or others access \(mode 644\): chmod 600 it/,
    );
    assert.ok(message.startsWith(join(d, 'example.org.pass')));
  });

  test('a .p12 readable by group or others (0644, 0640) is refused', async () => {
    for (const mode of [0o644, 0o640]) {
      const d = await keysDir({ 'example.org.p12': [await readFile(rsaP12), mode] });
      const message = await identityError(
        loadIdentities(d, ['example.org'], { passphrase: PASS }),
        new RegExp(`grants group or others access \\(mode ${mode.toString(8)}\\): chmod 600 it`),
      );
      assert.ok(message.startsWith(join(d, 'example.org.p12')));
    }
  });

  test('a truncated or garbage .p12: an IdentityError naming the file', async () => {
    const good = await readFile(rsaP12);
    for (const bytes of [good.subarray(0, 100), Buffer.from('garbage\n')]) {
      const d = await keysDir({ 'example.org.p12': bytes });
      const message = await identityError(
        loadIdentities(d, ['example.org'], { passphrase: PASS }),
        /not a readable PKCS#12 file/,
      );
      assert.ok(message.startsWith(join(d, 'example.org.p12')));
    }
  });

  test('rollover: an older PEM key and a newer p12 key of one domain combine', async () => {
    const older = await intermediate.issue({
      commonName: 'older example.org',
      algo: 'ec-p256',
      notBefore: new Date(Date.now() - 30 * DAY),
    });
    const d = await keysDir({
      'example.org.key.pem': older.keyPem,
      'example.org.crt.pem': older.certPem,
      'example.org.p12': await readFile(rsaP12),
      'example.org.pass': PASS,
    });
    const id = (await loadIdentities(d, ['example.org'])).get('example.org')!;
    assert.deepEqual(id.keys.map((k) => k.label).sort(), ['default', 'default.p12']);
    assert.equal(
      id.signer?.certificate.fingerprint,
      loadCertificatesPem(rsa.certPem)[0]!.fingerprint,
    );
    assert.equal(id.decryptionKeys.length, 2);
    // The other way round: the PEM key is newer, so it signs; the p12 key still decrypts.
    const newer = await intermediate.issue({ commonName: 'newer example.org', algo: 'ec-p256' });
    await writeFile(join(d, 'example.org.key.pem'), newer.keyPem);
    await writeFile(join(d, 'example.org.crt.pem'), newer.certPem);
    const later = (await loadIdentities(d, ['example.org'], new Date())).get('example.org')!;
    assert.equal(
      later.signer?.certificate.fingerprint,
      loadCertificatesPem(newer.certPem)[0]!.fingerprint,
    );
    assert.equal(later.decryptionKeys.length, 2);
  });

  test('a p12 with two pairs gives two keys with distinct labels; the newest valid one signs', async () => {
    const bytes = await pkijsP12(
      [rsa.keyPem, ec.keyPem],
      [rsa.certPem, ec.certPem, intermediate.certPem],
      PASS,
    );
    const d = await keysDir({ 'example.org.both.p12': bytes, 'example.org.both.pass': PASS });
    const id = (await loadIdentities(d, ['example.org'])).get('example.org')!;
    assert.deepEqual(
      id.keys.map((k) => k.label),
      ['both.p12', 'both.p12#2'],
    );
    assert.equal(id.decryptionKeys.length, 2);
    const newest = [rsa, ec]
      .map((l) => loadCertificatesPem(l.certPem)[0]!)
      .sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime())[0]!;
    assert.equal(id.signer?.certificate.fingerprint, newest.fingerprint);
  });

  test('a file belongs to the longest domain: example.org.uk.p12 is not example.org key "uk"', async () => {
    const d = await keysDir({
      'example.org.uk.p12': await readFile(ecP12),
      'example.org.p12': await readFile(rsaP12),
    });
    const ids = await loadIdentities(d, ['example.org', 'example.org.uk'], { passphrase: PASS });
    assert.deepEqual(
      ids.get('example.org')!.keys.map((k) => k.label),
      ['default.p12'],
    );
    assert.deepEqual(
      ids.get('example.org.uk')!.keys.map((k) => k.certificate.publicKey.asymmetricKeyType),
      ['ec'],
    );
  });
});

describe('a PKCS#12 identity through the S/MIME engine', () => {
  for (const [algo, file, leaf] of [
    ['RSA', () => rsaP12, () => rsa],
    ['EC P-256', () => ecP12, () => ec],
  ] as const) {
    test(`${algo}: openssl cms -verify accepts its signature; it decrypts mail sent to it`, async () => {
      const d = join(dir, `engine-${algo.replace(/\W/g, '')}`);
      await mkdir(d, { mode: 0o700 });
      await copyFile(file(), join(d, 'example.org.p12'));
      await writeFile(join(d, 'example.org.pass'), PASS, { mode: 0o600 });
      const id = (await loadIdentities(d, ['example.org'])).get('example.org')!;
      const signed = ok(
        await transformOutbound(MESSAGE, {
          signer: id.signer!,
          recipients: [],
          options: { sign: true, encrypt: false },
        }),
      );
      // Only the root is trusted: the intermediate must come from the p12's chain.
      const tool = await cmsVerify(signed, { caFile: root.certPath, purpose: 'smimesign' });
      assert.ok(tool.ok, tool.stderr);
      assert.match(tool.content.toString('latin1'), /Signed with a key from a PKCS#12 file/);

      // The partner is the author's domain: its signature vouches for the AES-CBC content.
      const partner = await generateDomainPki('example.org', { algo: 'ec-p256' });
      const encrypted = ok(
        await transformOutbound(MESSAGE, {
          signer: {
            certificate: partner.signing.certificate,
            chain: [partner.ca.certificate],
            privateKey: partner.signing.privateKey,
          },
          recipients: [{ certificate: loadCertificatesPem(leaf().certPem)[0]! }],
          options: { sign: true, encrypt: true },
        }),
      );
      const back = await transformInbound(encrypted, { keys: id.decryptionKeys });
      assert.deepEqual(back.report.actions.slice(0, 1), ['decrypted']);
      assert.match(ok(back).toString('latin1'), /Signed with a key from a PKCS#12 file/);
    });
  }

  test('serve: a .p12 with its .pass loads, and its near expiry is warned about and measured', async () => {
    const soon = await intermediate.issue({
      commonName: 'expiring example.org',
      algo: 'ec-p256',
      notAfter: new Date(Date.now() + 10 * DAY),
    });
    const d = join(dir, 'serve-keys');
    await mkdir(d, { mode: 0o700 });
    await soon.p12Path(PASS).then((p) => copyFile(p, join(d, 'example.org.p12')));
    await writeFile(join(d, 'example.org.pass'), `${PASS}\n`, { mode: 0o600 });
    const httpPort = await freePort();
    const milter = await startServe({
      DOMSEC_KEYS_DIR: d,
      DOMSEC_LOCAL_DOMAINS: 'example.org',
      DOMSEC_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    });
    try {
      const warning = milter
        .output()
        .split('\n')
        .find((l) => l.includes('certificate expires within 30 days'));
      assert.ok(warning, milter.output());
      assert.equal(JSON.parse(warning).key, 'default.p12');
      assert.doesNotMatch(milter.output(), /no key for local domain/);
      assert.ok(!milter.output().includes(PASS));
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      const gauge = metrics.match(
        /^domsec_certificate_expiry_seconds\{domain="example.org",usage="default.p12"\} (\d+)$/m,
      );
      assert.ok(gauge, metrics);
      const days = Number(gauge[1]) / 86_400;
      assert.ok(days > 9 && days <= 10, `${days} days left`);
    } finally {
      assert.equal(await milter.stop(), 0);
    }
  });
});

test('openssl refuses what we refuse: a wrong passphrase fails its MAC check too', async () => {
  // Guards the test fixtures: the wrong passphrase really is wrong for OpenSSL.
  const r = await runTool('openssl', ['pkcs12', '-in', rsaP12, '-noout', '-passin', 'env:P'], {
    env: { P: WRONG },
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /mac verify/i);
});
