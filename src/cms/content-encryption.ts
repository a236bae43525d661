/**
 * Content-encryption algorithms: AES-CBC (EnvelopedData), AES-GCM and
 * ChaCha20-Poly1305 (AuthEnvelopedData, RFC 5083/5084/8103).
 */

import { createCipheriv, createDecipheriv } from 'node:crypto';
import * as asn1js from 'asn1js';
import { eachSlice, type Parts } from '../util/slices.js';
import { CmsError, toBuffer } from './asn1.js';
import * as der from './der.js';
import { OID } from './oids.js';
import { randomBytesPooled as randomBytes } from './random.js';

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
  /** DER AlgorithmIdentifier with its parameters (IV or GCMParameters). */
  readonly algorithm: Buffer;
  /** The ciphertext in pieces (cipher update and final output), not concatenated. */
  readonly ciphertext: Buffer[];
  /** AEAD only: the authentication tag (the `mac` of AuthEnvelopedData). */
  readonly tag?: Buffer;
}

/** A cipher ready for the content, and how to finish it into an Encrypted. */
function startEncryption(cipher: ContentCipher, key: Buffer) {
  const s = spec(BY_NAME[cipher]);
  if (s.aead) {
    const nonce = randomBytes(12);
    const c = createCipheriv(s.node as 'aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    return {
      c,
      // GCMParameters: the ICV length written explicitly (RFC 5084 default is 12).
      finish: (ciphertext: Buffer[]): Encrypted => {
        ciphertext.push(c.final());
        return {
          algorithm: der.algorithm(s.oid, der.seq(der.octets(nonce), der.int(TAG_LENGTH))),
          ciphertext,
          tag: c.getAuthTag(),
        };
      },
    };
  }
  const iv = randomBytes(16);
  const c = createCipheriv(s.node, key, iv);
  return {
    c,
    finish: (ciphertext: Buffer[]): Encrypted => {
      ciphertext.push(c.final());
      return { algorithm: der.algorithm(s.oid, der.octets(iv)), ciphertext };
    },
  };
}

export function encryptContent(cipher: ContentCipher, key: Buffer, content: Buffer): Encrypted {
  const { c, finish } = startEncryption(cipher, key);
  return finish([c.update(content)]);
}

/** encryptContent over parts, a slice per turn of the event loop when large. */
export async function encryptContentSliced(
  cipher: ContentCipher,
  key: Buffer,
  content: Parts,
): Promise<Encrypted> {
  const { c, finish } = startEncryption(cipher, key);
  const ciphertext: Buffer[] = [];
  await eachSlice(content, (slice) => ciphertext.push(c.update(slice)));
  return finish(ciphertext);
}

export function newContentKey(cipher: ContentCipher): Buffer {
  return randomBytes(spec(BY_NAME[cipher]).keyLength);
}

/** PKCS#7 padding (RFC 5652 6.3): n bytes of value n, 1 <= n <= block size. */
/**
 * CBC padding off, without a decision on it: bad padding strips nothing and
 * raises nothing. Whether padding was valid must not change what happens
 * next (Vaudenay's padding oracle): CBC content is judged by the signature
 * inside it, which bad padding cannot make valid.
 */
function removePadding(plain: Buffer, blockSize: number): Buffer {
  const n = plain[plain.length - 1] ?? 0;
  let bad = n === 0 || n > blockSize ? 1 : 0;
  for (let i = 1; i <= blockSize; i++) {
    // Every one of the last n bytes must equal n; the loop length does not depend on n.
    if (i <= n && plain[plain.length - i] !== n) bad = 1;
  }
  return plain.subarray(0, plain.length - n * (1 - bad));
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
    const blockSize = s.node.startsWith('des') ? 8 : 16;
    if (ciphertext.length === 0 || ciphertext.length % blockSize !== 0) throw decryptionFailed();
    let plain: Buffer;
    try {
      // Padding removed by hand: the whole plaintext comes out of one update() and is
      // returned as a view, not copied again (a 25 MB message would be copied otherwise).
      const d = createDecipheriv(s.node, key, toBuffer(params.valueBlock.valueHexView));
      d.setAutoPadding(false);
      plain = d.update(ciphertext);
      d.final();
    } catch {
      throw decryptionFailed();
    }
    return removePadding(plain, blockSize);
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
    const plain = d.update(ciphertext);
    const rest = d.final();
    return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
  } catch {
    throw decryptionFailed();
  }
}
