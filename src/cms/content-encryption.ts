/**
 * Content-encryption algorithms: AES-CBC (EnvelopedData), AES-GCM and
 * ChaCha20-Poly1305 (AuthEnvelopedData, RFC 5083/5084/8103).
 */

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import { algorithm, CmsError, integer, octets, seq, toBuffer } from './asn1.js';
import { OID } from './oids.js';

export type ContentCipher = 'aes-128-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-256-gcm';

interface CipherSpec {
  readonly oid: string;
  readonly node: string;
  readonly keyLength: number;
  readonly aead: boolean;
}

const SPECS: Readonly<Record<string, CipherSpec>> = {
  [OID.aes128Cbc]: { oid: OID.aes128Cbc, node: 'aes-128-cbc', keyLength: 16, aead: false },
  [OID.aes192Cbc]: { oid: OID.aes192Cbc, node: 'aes-192-cbc', keyLength: 24, aead: false },
  [OID.aes256Cbc]: { oid: OID.aes256Cbc, node: 'aes-256-cbc', keyLength: 32, aead: false },
  [OID.desEde3Cbc]: { oid: OID.desEde3Cbc, node: 'des-ede3-cbc', keyLength: 24, aead: false },
  [OID.aes128Gcm]: { oid: OID.aes128Gcm, node: 'aes-128-gcm', keyLength: 16, aead: true },
  [OID.aes192Gcm]: { oid: OID.aes192Gcm, node: 'aes-192-gcm', keyLength: 24, aead: true },
  [OID.aes256Gcm]: { oid: OID.aes256Gcm, node: 'aes-256-gcm', keyLength: 32, aead: true },
  [OID.chacha20Poly1305]: {
    oid: OID.chacha20Poly1305,
    node: 'chacha20-poly1305',
    keyLength: 32,
    aead: true,
  },
};

const BY_NAME: Readonly<Record<ContentCipher, string>> = {
  'aes-128-cbc': OID.aes128Cbc,
  'aes-256-cbc': OID.aes256Cbc,
  'aes-128-gcm': OID.aes128Gcm,
  'aes-256-gcm': OID.aes256Gcm,
};

function spec(oid: string): CipherSpec {
  const s = SPECS[oid];
  if (!s) throw new CmsError('unsupported', `content-encryption algorithm ${oid}`);
  return s;
}

export function cipherKeyLength(oid: string): number {
  return spec(oid).keyLength;
}

export function isAead(cipher: ContentCipher): boolean {
  return spec(BY_NAME[cipher]).aead;
}

/** ICV length we write and require at least: the full 16-octet GCM tag. */
const TAG_LENGTH = 16;

export interface Encrypted {
  /** DER-ready AlgorithmIdentifier with its parameters (IV or GCMParameters). */
  readonly algorithm: asn1js.Sequence;
  readonly ciphertext: Buffer;
  /** AEAD only: the authentication tag (the `mac` of AuthEnvelopedData). */
  readonly tag?: Buffer;
}

export function encryptContent(cipher: ContentCipher, key: Buffer, content: Buffer): Encrypted {
  const s = spec(BY_NAME[cipher]);
  if (s.aead) {
    const nonce = randomBytes(12);
    const c = createCipheriv(s.node as 'aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    const ciphertext = Buffer.concat([c.update(content), c.final()]);
    // GCMParameters: the ICV length written explicitly (RFC 5084 default is 12).
    return {
      algorithm: algorithm(s.oid, seq(octets(nonce), integer(TAG_LENGTH))),
      ciphertext,
      tag: c.getAuthTag(),
    };
  }
  const iv = randomBytes(16);
  const c = createCipheriv(s.node, key, iv);
  return {
    algorithm: algorithm(s.oid, octets(iv)),
    ciphertext: Buffer.concat([c.update(content), c.final()]),
  };
}

export function newContentKey(cipher: ContentCipher): Buffer {
  return randomBytes(spec(BY_NAME[cipher]).keyLength);
}

function decryptionFailed(): CmsError {
  return new CmsError(
    'decrypt-failed',
    'the content could not be decrypted with the recovered key',
  );
}

/**
 * Decrypts with the algorithm identified by `oid`/`params`. `tag` and `aad`
 * for AEAD ciphers. Every failure is the same 'decrypt-failed' error, so a
 * wrong key and a tampered ciphertext look alike from outside.
 */
export function decryptContent(
  oid: string,
  params: asn1js.AsnType | undefined,
  key: Buffer,
  ciphertext: Buffer,
  aead?: { readonly tag: Buffer; readonly aad?: Buffer },
): Buffer {
  const s = spec(oid);
  if (key.length !== s.keyLength) throw decryptionFailed();
  if (!s.aead) {
    if (!(params instanceof asn1js.OctetString))
      throw new CmsError('malformed', `${s.node} without an IV`);
    try {
      const d = createDecipheriv(s.node, key, toBuffer(params.valueBlock.valueHexView));
      return Buffer.concat([d.update(ciphertext), d.final()]);
    } catch {
      throw decryptionFailed();
    }
  }
  if (!aead) throw new CmsError('unsupported', `${s.node} outside AuthEnvelopedData`);
  let nonce: Buffer;
  let tagLength = 12;
  if (oid === OID.chacha20Poly1305) {
    if (!(params instanceof asn1js.OctetString))
      throw new CmsError('malformed', 'ChaCha20-Poly1305 without a nonce');
    nonce = toBuffer(params.valueBlock.valueHexView);
    tagLength = 16;
  } else {
    const fields = params instanceof asn1js.Sequence ? params.valueBlock.value : [];
    if (!(fields[0] instanceof asn1js.OctetString))
      throw new CmsError('malformed', 'GCMParameters without a nonce');
    nonce = toBuffer(fields[0].valueBlock.valueHexView);
    if (fields[1] instanceof asn1js.Integer) tagLength = fields[1].valueBlock.valueDec;
  }
  if (aead.tag.length !== tagLength || tagLength < 12) throw decryptionFailed();
  try {
    const d = createDecipheriv(s.node as 'aes-256-gcm', key, nonce, { authTagLength: tagLength });
    d.setAuthTag(aead.tag);
    if (aead.aad) d.setAAD(aead.aad);
    return Buffer.concat([d.update(ciphertext), d.final()]);
  } catch {
    throw decryptionFailed();
  }
}
