/**
 * The password-based parts of PKCS#12 that WebCrypto lacks, on node:crypto:
 * the PKCS#12 key derivation (RFC 7292 appendix B), which every PKCS#12 MAC
 * uses, and the legacy pbeWithSHAAnd3-KeyTripleDES-CBC encryption of files
 * made with `openssl pkcs12 -legacy` or older tools. RC2 and RC4 are not here:
 * OpenSSL 3 (and so Node) only has them in its legacy provider.
 */

import { createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { OID } from '../cms/oids.js';

interface DigestSpec {
  readonly name: string;
  /** Output length in bytes (u in RFC 7292). */
  readonly u: number;
  /** Block length in bytes (v in RFC 7292). */
  readonly v: number;
}

const DIGESTS: Readonly<Record<string, DigestSpec>> = {
  [OID.sha1]: { name: 'sha1', u: 20, v: 64 },
  [OID.sha224]: { name: 'sha224', u: 28, v: 64 },
  [OID.sha256]: { name: 'sha256', u: 32, v: 64 },
  [OID.sha384]: { name: 'sha384', u: 48, v: 128 },
  [OID.sha512]: { name: 'sha512', u: 64, v: 128 },
};

/** Whether a digest OID is one the MAC check knows. */
export function isKnownMacDigest(oid: string): boolean {
  return DIGESTS[oid] !== undefined;
}

/**
 * The passphrase as RFC 7292 wants it for the PKCS#12 KDF: UTF-16 big-endian
 * with two zero bytes at the end (what OpenSSL's OPENSSL_utf82uni produces).
 */
export function bmpPassword(passphrase: string): Buffer {
  const out = Buffer.alloc(passphrase.length * 2 + 2);
  for (let i = 0; i < passphrase.length; i++) out.writeUInt16BE(passphrase.charCodeAt(i), i * 2);
  return out;
}

/** `length` bytes repeated from `bytes` up to a multiple of v (empty stays empty). */
function fill(bytes: Uint8Array, v: number): Buffer {
  const out = Buffer.alloc(v * Math.ceil(bytes.length / v));
  for (let i = 0; i < out.length; i++) out[i] = bytes[i % bytes.length]!;
  return out;
}

/**
 * RFC 7292 B.2: derives `length` bytes for purpose `id` (1 key, 2 IV, 3 MAC key)
 * from a BMP-encoded password (see bmpPassword).
 */
export function pkcs12Kdf(
  digestOid: string,
  password: Uint8Array,
  salt: Uint8Array,
  id: 1 | 2 | 3,
  iterations: number,
  length: number,
): Buffer {
  const spec = DIGESTS[digestOid];
  if (!spec) throw new Error(`unsupported digest ${digestOid}`);
  const { name, u, v } = spec;
  const diversifier = Buffer.alloc(v, id);
  const input = Buffer.concat([fill(salt, v), fill(password, v)]);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let a = createHash(name).update(diversifier).update(input).digest();
    for (let r = 1; r < iterations; r++) a = createHash(name).update(a).digest();
    blocks.push(a);
    if (produced + u >= length) break;
    // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block of I.
    const b = fill(a, v);
    for (let j = 0; j < input.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = input[j + k]! + b[k]! + carry;
        input[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/**
 * Checks a PKCS#12 MAC (HMAC keyed with the KDF's id 3). An empty passphrase
 * is tried both as the empty BMP string and as no password at all, as
 * OpenSSL does, since tools disagree on which of the two they wrote.
 */
export function macMatches(
  digestOid: string,
  passphrase: string,
  salt: Uint8Array,
  iterations: number,
  content: Uint8Array,
  expected: Uint8Array,
): boolean {
  const spec = DIGESTS[digestOid];
  if (!spec) throw new Error(`unsupported MAC digest ${digestOid}`);
  const candidates =
    passphrase === '' ? [bmpPassword(''), Buffer.alloc(0)] : [bmpPassword(passphrase)];
  return candidates.some((password) => {
    const key = pkcs12Kdf(digestOid, password, salt, 3, iterations, spec.u);
    const mac = createHmac(spec.name, key).update(content).digest();
    return mac.length === expected.length && timingSafeEqual(mac, expected);
  });
}

const LEGACY_CIPHERS: Readonly<Record<string, { cipher: string; keyLength: number }>> = {
  [OID.pbeSha1TripleDes]: { cipher: 'des-ede3-cbc', keyLength: 24 },
  [OID.pbeSha1TwoKeyTripleDes]: { cipher: 'des-ede-cbc', keyLength: 16 },
};

export function isLegacyTripleDes(oid: string): boolean {
  return LEGACY_CIPHERS[oid] !== undefined;
}

/**
 * Decrypts pbeWithSHAAnd3-KeyTripleDES-CBC (or its two-key variant). Throws
 * node's own error when the padding is wrong (wrong passphrase or damage).
 */
export function decryptLegacyTripleDes(
  algorithmOid: string,
  passphrase: string,
  salt: Uint8Array,
  iterations: number,
  ciphertext: Uint8Array,
): Buffer {
  const spec = LEGACY_CIPHERS[algorithmOid];
  if (!spec) throw new Error(`not a PKCS#12 triple-DES algorithm: ${algorithmOid}`);
  const password = bmpPassword(passphrase);
  const key = pkcs12Kdf(OID.sha1, password, salt, 1, iterations, spec.keyLength);
  const iv = pkcs12Kdf(OID.sha1, password, salt, 2, iterations, 8);
  const decipher = createDecipheriv(spec.cipher, key, iv);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}
