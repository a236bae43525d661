/**
 * ECDH key agreement for CMS (RFC 5753): ephemeral-static ECDH, the ANSI
 * X9.63 KDF over ECC-CMS-SharedInfo (or HKDF, RFC 8418, for X25519), and
 * AES key wrap (RFC 3394).
 */

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { CmsError } from './asn1.js';
import * as der from './der.js';
import { OID } from './oids.js';
import type { DigestName } from './signature-algorithms.js';

const KDF_DIGEST: Readonly<Record<string, DigestName>> = {
  [OID.dhSinglePassStdDhSha1Kdf]: 'sha1',
  [OID.dhSinglePassStdDhSha256Kdf]: 'sha256',
  [OID.dhSinglePassStdDhSha384Kdf]: 'sha384',
  [OID.dhSinglePassStdDhSha512Kdf]: 'sha512',
};
const HKDF_DIGEST: Readonly<Record<string, DigestName>> = {
  [OID.ecdhHkdfSha256]: 'sha256',
  [OID.ecdhHkdfSha384]: 'sha384',
  [OID.ecdhHkdfSha512]: 'sha512',
};

const WRAP: Readonly<Record<string, { node: string; keyLength: number }>> = {
  [OID.aes128Wrap]: { node: 'id-aes128-wrap', keyLength: 16 },
  [OID.aes192Wrap]: { node: 'id-aes192-wrap', keyLength: 24 },
  [OID.aes256Wrap]: { node: 'id-aes256-wrap', keyLength: 32 },
};

/** RFC 3394 default initial value. */
const WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

export function kdfDigest(schemeOid: string): DigestName {
  const d = KDF_DIGEST[schemeOid] ?? HKDF_DIGEST[schemeOid];
  if (!d) throw new CmsError('unsupported', `key agreement scheme ${schemeOid}`);
  return d;
}

function wrapSpec(wrapOid: string) {
  const w = WRAP[wrapOid];
  if (!w) throw new CmsError('unsupported', `key wrap algorithm ${wrapOid}`);
  return w;
}

/** X9.63 KDF: Hash(Z || counter || SharedInfo), counter from 1, truncated. */
export function x963Kdf(d: DigestName, z: Buffer, sharedInfo: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let produced = 0;
  for (let counter = 1; produced < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter, 0);
    const block = createHash(d).update(z).update(c).update(sharedInfo).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** ECC-CMS-SharedInfo DER (RFC 5753 7.2). */
function sharedInfo(wrapOid: string, keyLength: number, ukm: Buffer | undefined): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(keyLength * 8, 0);
  const parts = [der.algorithm(wrapOid)];
  if (ukm) parts.push(der.context(0, der.octets(ukm)));
  parts.push(der.context(2, der.octets(bits)));
  return der.seq(...parts);
}

function kek(schemeOid: string, wrapOid: string, z: Buffer, ukm: Buffer | undefined): Buffer {
  const w = wrapSpec(wrapOid);
  const info = sharedInfo(wrapOid, w.keyLength, ukm);
  const hkdf = HKDF_DIGEST[schemeOid];
  // RFC 8418: the ukm, when present, is also the HKDF salt.
  if (hkdf) return Buffer.from(hkdfSync(hkdf, z, ukm ?? Buffer.alloc(0), info, w.keyLength));
  return x963Kdf(kdfDigest(schemeOid), z, info, w.keyLength);
}

export function wrapKey(wrapOid: string, key: Buffer, contentKey: Buffer): Buffer {
  const c = createCipheriv(wrapSpec(wrapOid).node, key, WRAP_IV);
  return Buffer.concat([c.update(contentKey), c.final()]);
}

export function unwrapKey(wrapOid: string, key: Buffer, wrapped: Buffer): Buffer {
  try {
    const d = createDecipheriv(wrapSpec(wrapOid).node, key, WRAP_IV);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch {
    throw new CmsError('decrypt-failed', 'the key encryption key does not unwrap the content key');
  }
}

export interface AgreementResult {
  /** The uncompressed ephemeral public point for OriginatorPublicKey. */
  readonly ephemeralPoint: Buffer;
  readonly wrappedKey: Buffer;
  readonly schemeOid: string;
  readonly wrapOid: string;
}

/** Sender side: a fresh ephemeral key on the recipient's curve. */
export function agreeAndWrap(recipientKey: KeyObject, contentKey: Buffer): AgreementResult {
  const namedCurve = recipientKey.asymmetricKeyDetails?.namedCurve;
  if (!namedCurve) throw new CmsError('unsupported', 'key agreement needs an EC recipient key');
  const ephemeral = generateKeyPairSync('ec', { namedCurve });
  const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipientKey });
  const schemeOid =
    namedCurve === 'secp384r1' ? OID.dhSinglePassStdDhSha384Kdf : OID.dhSinglePassStdDhSha256Kdf;
  const wrapOid = contentKey.length > 16 ? OID.aes256Wrap : OID.aes128Wrap;
  const jwk = ephemeral.publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x!, 'base64url'),
    Buffer.from(jwk.y!, 'base64url'),
  ]);
  return {
    ephemeralPoint: point,
    wrappedKey: wrapKey(wrapOid, kek(schemeOid, wrapOid, z, undefined), contentKey),
    schemeOid,
    wrapOid,
  };
}

/** Recipient side: Z from our key and the originator's point, then unwrap. */
export function agreeAndUnwrap(
  privateKey: KeyObject,
  originator: KeyObject,
  schemeOid: string,
  wrapOid: string,
  ukm: Buffer | undefined,
  wrapped: Buffer,
): Buffer {
  let z: Buffer;
  try {
    z = diffieHellman({ privateKey, publicKey: originator });
  } catch {
    throw new CmsError(
      'decrypt-failed',
      'key agreement failed: originator key does not match ours',
    );
  }
  return unwrapKey(wrapOid, kek(schemeOid, wrapOid, z, ukm), wrapped);
}
