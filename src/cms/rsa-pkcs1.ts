/**
 * RSA PKCS#1 v1.5 key transport, decrypted the way Node 20 still allows
 * (CVE-2023-46809 took RSA_PKCS1_PADDING out of privateDecrypt): raw RSA,
 * then unpadding that walks every byte either way and, on bad padding,
 * returns a key derived from the ciphertext instead (implicit rejection, as
 * in RFC 8017 drafts and OpenSSL 3.2). Good and bad padding thus take the same
 * path and both give "a key"; only the content decryption can tell.
 */

import { constants, createHash, createHmac, type KeyObject, privateDecrypt } from 'node:crypto';

const rejectionSecrets = new WeakMap<KeyObject, Buffer>();

/** A per-key secret, so synthetic keys cannot be predicted without the private key. */
function rejectionSecret(key: KeyObject): Buffer {
  let s = rejectionSecrets.get(key);
  if (!s) {
    const der = key.export({ format: 'der', type: 'pkcs8' });
    s = createHash('sha256').update('domsec implicit rejection\0').update(der).digest();
    rejectionSecrets.set(key, s);
  }
  return s;
}

function syntheticKey(key: KeyObject, ciphertext: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < length; i++) {
    out.push(
      createHmac('sha256', rejectionSecret(key))
        .update(Buffer.from([i]))
        .update(ciphertext)
        .digest(),
    );
  }
  return Buffer.concat(out).subarray(0, length);
}

/**
 * Decrypts a PKCS#1 v1.5 encrypted key of `expectedLength` bytes. Never
 * throws for bad padding or a ciphertext that does not fit the key.
 */
export function decryptPkcs1KeyTransport(
  key: KeyObject,
  ciphertext: Buffer,
  expectedLength: number,
): Buffer {
  const k = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  let em: Buffer;
  try {
    em = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ciphertext);
  } catch {
    em = Buffer.alloc(k);
  }
  const synthetic = syntheticKey(key, ciphertext, expectedLength);
  // EM = 0x00 || 0x02 || PS (non-zero, >= 8 bytes) || 0x00 || M, with |M| = expectedLength.
  const separator = k - expectedLength - 1;
  let bad = em.length ^ k;
  bad |= em[0] ?? 1;
  bad |= (em[1] ?? 0) ^ 2;
  bad |= separator < 10 ? 1 : 0;
  for (let i = 2; i < k; i++) {
    const byte = em[i] ?? 1;
    // PS bytes must be non-zero; the separator must be zero; M is free.
    const inPs = (((i - separator) >>> 31) & 1) * 0xff;
    const isSep = i === separator ? 0xff : 0;
    bad |= inPs & (byte === 0 ? 1 : 0);
    bad |= isSep & byte;
  }
  const mask = bad === 0 ? 0xff : 0;
  const out = Buffer.alloc(expectedLength);
  for (let i = 0; i < expectedLength; i++) {
    out[i] = ((em[separator + 1 + i] ?? 0) & mask) | (synthetic[i]! & ~mask);
  }
  return out;
}
