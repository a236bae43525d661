/**
 * Reads a PKCS#12 (PFX) file into key pairs: private key, its certificate
 * and the other certificates as chain. pkijs does the structure and PBES2
 * (WebCrypto); the MAC and legacy triple-DES are in pkcs12-pbe.ts.
 *
 * Decisions:
 * - The MAC is required and checked first: a file without one has no
 *   integrity and is refused; a mismatch means a wrong passphrase.
 * - Keys pair with certificates by public key, never by position or by the
 *   friendlyName/localKeyId attributes. Every certificate whose public key is
 *   one of the file's private keys makes one pair; several pairs in one file
 *   are all used. A private key without its certificate is refused.
 * - RC2/RC4 (the certificate encryption of `openssl pkcs12 -legacy`) are not
 *   available in OpenSSL 3's default provider: a clear error says how to
 *   re-export. Legacy triple-DES works.
 * - Error messages name the file and never contain the passphrase or key bytes.
 */

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { type Asn1Limits, parseBer } from '../cms/asn1.js';
import { type CertificateInfo, loadCertificate } from '../cms/certificate.js';
import { OID } from '../cms/oids.js';
import {
  decryptLegacyTripleDes,
  isKnownMacDigest,
  isLegacyTripleDes,
  macMatches,
} from './pkcs12-pbe.js';

export type Pkcs12ErrorReason =
  | 'too-large'
  | 'malformed'
  | 'unsupported'
  | 'wrong-passphrase'
  | 'no-key'
  | 'unpaired-key';

export class Pkcs12Error extends Error {
  override readonly name = 'Pkcs12Error';
  constructor(
    readonly reason: Pkcs12ErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export interface Pkcs12KeyPair {
  readonly privateKey: KeyObject;
  readonly certificate: CertificateInfo;
  /** The file's other certificates: issuers first (leaf -> root), then any others. */
  readonly chain: readonly CertificateInfo[];
}

/** A real domain PKCS#12 (key, leaf, a few CA certificates) is a few KiB. */
export const PKCS12_MAX_BYTES = 1024 * 1024;
/** Above OpenSSL's 2048 and Java's 10 000; bounds the work a hostile file can ask for. */
export const PKCS12_MAX_ITERATIONS = 1_000_000;
const MAX_BAGS = 256;
const MAX_NESTING = 4;
const LIMITS: Asn1Limits = { maxNodes: 100_000, maxContentLength: PKCS12_MAX_BYTES, maxDepth: 40 };

const RC_ALGORITHMS = new Set<string>([
  OID.pbeSha1Rc2_40,
  OID.pbeSha1Rc2_128,
  OID.pbeSha1Rc4_40,
  OID.pbeSha1Rc4_128,
]);

/** What pkijs's PBES2 (WebCrypto) can do: PBKDF2 with these PRFs, AES-CBC. */
const PBES2_CIPHERS = new Set<string>([OID.aes128Cbc, OID.aes192Cbc, OID.aes256Cbc]);
const PBKDF2_PRFS = new Set<string>([
  OID.hmacWithSha1,
  OID.hmacWithSha256,
  OID.hmacWithSha384,
  OID.hmacWithSha512,
]);

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Runs a pkijs/asn1js step; any failure becomes a 'malformed' error naming the file. */
function structure<T>(name: string, what: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error(
      'malformed',
      `${name}: not a readable PKCS#12 file (${what}: ${message(err)})`,
    );
  }
}

function parse(bytes: Uint8Array, name: string, what: string): asn1js.AsnType {
  return structure(name, what, () => parseBer(bytes, what, LIMITS));
}

/**
 * An iteration count read from the encoding itself: asn1js's valueDec is 0
 * for INTEGERs of four bytes or more, so pkijs's own numbers cannot be
 * trusted for the limit check. `undefined` when absent.
 */
function integerAt(sequence: unknown, index: number): number | undefined {
  if (!(sequence instanceof asn1js.Sequence)) return undefined;
  const value = sequence.valueBlock.value[index];
  if (!(value instanceof asn1js.Integer)) return undefined;
  const big = value.toBigInt();
  return big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(big);
}

function checkIterations(name: string, what: string, iterations: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > PKCS12_MAX_ITERATIONS) {
    throw new Pkcs12Error(
      'unsupported',
      `${name}: ${what} asks for ${iterations} iterations (allowed 1..${PKCS12_MAX_ITERATIONS})`,
    );
  }
}

function checkMac(
  pfx: pkijs.PFX,
  macDataSchema: unknown,
  content: Uint8Array,
  passphrase: string,
  name: string,
): void {
  const mac = pfx.macData;
  if (!mac) {
    throw new Pkcs12Error(
      'unsupported',
      `${name}: no MAC (integrity check) in the file: re-export it without -nomac`,
    );
  }
  const digest = mac.mac.digestAlgorithm.algorithmId;
  if (!isKnownMacDigest(digest))
    throw new Pkcs12Error('unsupported', `${name}: MAC digest ${digest} is not supported`);
  const iterations = integerAt(macDataSchema, 2) ?? 1;
  checkIterations(name, 'the MAC', iterations);
  const salt = mac.macSalt.valueBlock.valueHexView;
  const expected = mac.mac.digest.valueBlock.valueHexView;
  if (!macMatches(digest, passphrase, salt, iterations, content, expected)) {
    throw new Pkcs12Error(
      'wrong-passphrase',
      `${name}: wrong passphrase (the PKCS#12 integrity check failed), or the file is damaged`,
    );
  }
}

/** Decrypts password-encrypted bytes: PBES2 through pkijs/WebCrypto, legacy triple-DES here. */
async function decrypt(
  algorithm: pkijs.AlgorithmIdentifier,
  ciphertext: asn1js.OctetString,
  passphrase: string,
  name: string,
  what: string,
): Promise<Uint8Array> {
  const oid = algorithm.algorithmId;
  if (oid === OID.pbes2) {
    const params = structure(name, `${what} parameters`, () => {
      const pbes2 = new pkijs.PBES2Params({ schema: algorithm.algorithmParams });
      if (pbes2.keyDerivationFunc.algorithmId !== OID.pbkdf2)
        throw new Error(`key derivation ${pbes2.keyDerivationFunc.algorithmId} is not PBKDF2`);
      const kdfParams: unknown = pbes2.keyDerivationFunc.algorithmParams;
      const pbkdf2 = new pkijs.PBKDF2Params({ schema: kdfParams });
      return {
        cipher: pbes2.encryptionScheme.algorithmId,
        prf: pbkdf2.prf?.algorithmId ?? OID.hmacWithSha1,
        iterations: integerAt(kdfParams, 1) ?? 0,
      };
    });
    if (!PBES2_CIPHERS.has(params.cipher) || !PBKDF2_PRFS.has(params.prf)) {
      throw new Pkcs12Error(
        'unsupported',
        `${name}: cannot decrypt the ${what}: PBES2 with cipher ${params.cipher} and PRF ${params.prf} is not supported (AES-CBC with HMAC-SHA-1/256/384/512 is)`,
      );
    }
    checkIterations(name, what, params.iterations);
    const encrypted = new pkijs.EncryptedData({
      encryptedContentInfo: new pkijs.EncryptedContentInfo({
        contentType: OID.data,
        contentEncryptionAlgorithm: algorithm,
        encryptedContent: ciphertext,
      }),
    });
    // PBKDF2 takes the passphrase as UTF-8 bytes (unlike the MAC's BMP form).
    const utf8 = Buffer.from(passphrase, 'utf8');
    const password = utf8.buffer.slice(utf8.byteOffset, utf8.byteOffset + utf8.length);
    try {
      return new Uint8Array(await encrypted.decrypt({ password }));
    } catch {
      // The MAC matched, so the data was encrypted with another passphrase (-twopass) or is damaged.
      throw new Pkcs12Error(
        'wrong-passphrase',
        `${name}: cannot decrypt the ${what} (a different passphrase or damaged data)`,
      );
    }
  }
  if (isLegacyTripleDes(oid)) {
    const { salt, iterations } = structure(name, `${what} parameters`, () =>
      legacyParams(algorithm.algorithmParams),
    );
    checkIterations(name, what, iterations);
    try {
      // EncryptedContentInfo's [0] IMPLICIT content may be a relabelled primitive or constructed.
      const bytes = new Uint8Array(asn1js.OctetString.prototype.getValue.call(ciphertext));
      return decryptLegacyTripleDes(oid, passphrase, salt, iterations, bytes);
    } catch {
      throw new Pkcs12Error(
        'wrong-passphrase',
        `${name}: cannot decrypt the ${what} (a different passphrase or damaged data)`,
      );
    }
  }
  if (RC_ALGORITHMS.has(oid)) {
    throw new Pkcs12Error(
      'unsupported',
      `${name}: cannot decrypt the ${what}: RC2/RC4 encryption (openssl pkcs12 -legacy) is not available in OpenSSL 3 by default: re-export the file without -legacy`,
    );
  }
  throw new Pkcs12Error(
    'unsupported',
    `${name}: cannot decrypt the ${what}: unsupported encryption ${oid}`,
  );
}

/** pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER } */
function legacyParams(params: unknown): { salt: Uint8Array; iterations: number } {
  if (!(params instanceof asn1js.Sequence)) throw new Error('PBE parameters are not a SEQUENCE');
  const [salt, iterations] = params.valueBlock.value;
  if (!(salt instanceof asn1js.OctetString) || !(iterations instanceof asn1js.Integer))
    throw new Error('PBE parameters are not (salt, iterations)');
  return { salt: salt.valueBlock.valueHexView, iterations: integerAt(params, 1) ?? 0 };
}

interface Bags {
  readonly keys: KeyObject[];
  readonly certificates: CertificateInfo[];
}

async function collectBags(
  contents: pkijs.SafeContents,
  bags: Bags,
  passphrase: string,
  name: string,
  depth: number,
): Promise<void> {
  if (depth > MAX_NESTING) throw new Pkcs12Error('malformed', `${name}: bags nested too deep`);
  for (const bag of contents.safeBags) {
    if (bags.keys.length + bags.certificates.length >= MAX_BAGS)
      throw new Pkcs12Error('too-large', `${name}: more than ${MAX_BAGS} keys and certificates`);
    const value: unknown = bag.bagValue;
    if (bag.bagId === OID.pkcs12ShroudedKeyBag && value instanceof pkijs.PKCS8ShroudedKeyBag) {
      const der = await decrypt(
        value.encryptionAlgorithm,
        value.encryptedData,
        passphrase,
        name,
        'private key',
      );
      bags.keys.push(privateKey(der, name));
    } else if (bag.bagId === OID.pkcs12KeyBag && value instanceof pkijs.PrivateKeyInfo) {
      bags.keys.push(privateKey(value.toSchema().toBER(false), name));
    } else if (bag.bagId === OID.pkcs12CertBag && value instanceof pkijs.CertBag) {
      if (value.certId !== OID.pkcs12X509Certificate) continue;
      const der = Buffer.from((value.certValue as asn1js.OctetString).valueBlock.valueHexView);
      bags.certificates.push(structure(name, 'certificate', () => loadCertificate(der)));
    } else if (bag.bagId === OID.pkcs12SafeContentsBag && value instanceof pkijs.SafeContents) {
      await collectBags(value, bags, passphrase, name, depth + 1);
    }
    // CRL and secret bags carry nothing an identity needs.
  }
}

function privateKey(der: ArrayBuffer | Uint8Array, name: string): KeyObject {
  const key = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der);
  try {
    return createPrivateKey({ key, format: 'der', type: 'pkcs8' });
  } catch {
    // Node's message could quote the key's structure: say only what failed.
    throw new Pkcs12Error('malformed', `${name}: a private key in the file is not usable`);
  }
}

const spki = (key: KeyObject) => key.export({ format: 'der', type: 'spki' });

/** Issuers of `leaf` first (following issuer -> subject), then the remaining certificates. */
function chainFor(leaf: CertificateInfo, others: readonly CertificateInfo[]): CertificateInfo[] {
  const rest = [...others];
  const chain: CertificateInfo[] = [];
  let current = leaf;
  while (!current.issuerDer.equals(current.subjectDer)) {
    const i = rest.findIndex((c) => c.subjectDer.equals(current.issuerDer));
    if (i < 0) break;
    current = rest.splice(i, 1)[0]!;
    chain.push(current);
  }
  return [...chain, ...rest];
}

function pair(bags: Bags, name: string): Pkcs12KeyPair[] {
  if (bags.keys.length === 0)
    throw new Pkcs12Error('no-key', `${name}: no private key in the file`);
  const unique = [...new Map(bags.certificates.map((c) => [c.fingerprint, c])).values()];
  const keySpki = bags.keys.map((k) => spki(createPublicKey(k)));
  const leaves: { certificate: CertificateInfo; key: KeyObject }[] = [];
  const used = new Set<number>();
  for (const certificate of unique) {
    const i = keySpki.findIndex((s) => s.equals(spki(certificate.publicKey)));
    if (i >= 0) {
      leaves.push({ certificate, key: bags.keys[i]! });
      used.add(i);
    }
  }
  if (used.size < bags.keys.length) {
    throw new Pkcs12Error(
      'unpaired-key',
      `${name}: ${bags.keys.length - used.size} private key(s) without a matching certificate in the file`,
    );
  }
  const leafSet = new Set(leaves.map((l) => l.certificate));
  const others = unique.filter((c) => !leafSet.has(c));
  return leaves.map((l) => ({
    privateKey: l.key,
    certificate: l.certificate,
    chain: chainFor(l.certificate, others),
  }));
}

/**
 * The key pairs of a PKCS#12 file. `name` (the file's path) prefixes every
 * error message; the passphrase never appears in one.
 */
export async function readPkcs12(
  bytes: Uint8Array,
  passphrase: string,
  name: string,
): Promise<Pkcs12KeyPair[]> {
  if (bytes.length > PKCS12_MAX_BYTES) {
    throw new Pkcs12Error(
      'too-large',
      `${name}: ${bytes.length} bytes exceed the limit of ${PKCS12_MAX_BYTES} for a PKCS#12 file`,
    );
  }
  const root = parse(bytes, name, 'PFX');
  const pfx = structure(name, 'PFX', () => new pkijs.PFX({ schema: root }));
  const macDataSchema = root instanceof asn1js.Sequence ? root.valueBlock.value[2] : undefined;
  if (pfx.version !== 3)
    throw new Pkcs12Error('unsupported', `${name}: PKCS#12 version ${pfx.version} (expected 3)`);
  if (pfx.authSafe.contentType !== OID.data) {
    throw new Pkcs12Error(
      'unsupported',
      `${name}: public-key integrity mode (${pfx.authSafe.contentType}) is not supported: export with a password`,
    );
  }
  const content = structure(
    name,
    'authenticated safe',
    () => new Uint8Array((pfx.authSafe.content as asn1js.OctetString).getValue()),
  );
  checkMac(pfx, macDataSchema, content, passphrase, name);
  const safe = structure(
    name,
    'authenticated safe',
    () => new pkijs.AuthenticatedSafe({ schema: parse(content, name, 'authenticated safe') }),
  );
  const bags: Bags = { keys: [], certificates: [] };
  for (const info of safe.safeContents) {
    let plain: Uint8Array;
    if (info.contentType === OID.data) {
      plain = structure(
        name,
        'safe contents',
        () => new Uint8Array((info.content as asn1js.OctetString).getValue()),
      );
    } else if (info.contentType === OID.encryptedData) {
      const eci = structure(
        name,
        'encrypted safe contents',
        () => new pkijs.EncryptedData({ schema: info.content }).encryptedContentInfo,
      );
      const ciphertext = eci.encryptedContent;
      if (!ciphertext)
        throw new Pkcs12Error('malformed', `${name}: encrypted safe contents without content`);
      plain = await decrypt(
        eci.contentEncryptionAlgorithm,
        ciphertext,
        passphrase,
        name,
        'encrypted section (certificates)',
      );
    } else {
      throw new Pkcs12Error(
        'unsupported',
        `${name}: safe contents of type ${info.contentType} (public-key privacy mode) are not supported`,
      );
    }
    const contents = structure(
      name,
      'safe contents',
      () => new pkijs.SafeContents({ schema: parse(plain, name, 'safe contents') }),
    );
    await collectBags(contents, bags, passphrase, name, 0);
  }
  return pair(bags, name);
}
