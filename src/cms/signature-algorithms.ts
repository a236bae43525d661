/**
 * Signature and digest algorithms: how we sign with a key (node:crypto's
 * callback form, so the RSA work runs on libuv's pool, not the event loop),
 * and how we verify what others signed.
 */

import { constants, createHash, type KeyObject, sign, verify } from 'node:crypto';
import { eachSlice, type Parts } from '../util/slices.js';
import { CmsError } from './asn1.js';
import * as der from './der.js';
import { OID } from './oids.js';

export type DigestName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const DIGEST_BY_OID: Readonly<Record<string, DigestName>> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};
export const DIGEST_OID: Readonly<Record<DigestName, string>> = {
  sha1: OID.sha1,
  sha256: OID.sha256,
  sha384: OID.sha384,
  sha512: OID.sha512,
};
const DIGEST_LENGTH: Readonly<Record<DigestName, number>> = {
  sha1: 20,
  sha256: 32,
  sha384: 48,
  sha512: 64,
};

export function digestByOid(id: string): DigestName {
  const d = DIGEST_BY_OID[id];
  if (!d) throw new CmsError('unsupported', `digest algorithm ${id}`);
  return d;
}

/**
 * Digests a signature may be verified with: ours, and MD5, which is never
 * signed with but verified so that it is reported as weak rather than as
 * an unknown algorithm.
 */
export type VerifyDigestName = DigestName | 'md5';

export function verifyDigestByOid(id: string): VerifyDigestName {
  return id === OID.md5 ? 'md5' : digestByOid(id);
}

export function digest(name: VerifyDigestName, data: Uint8Array | readonly Uint8Array[]): Buffer {
  const h = createHash(name);
  if (data instanceof Uint8Array) h.update(data);
  else for (const d of data) h.update(d);
  return h.digest();
}

/** digest() over parts, a slice per turn of the event loop when large. */
export async function digestSliced(name: DigestName, data: Parts): Promise<Buffer> {
  const h = createHash(name);
  await eachSlice(data, (slice) => h.update(slice));
  return h.digest();
}

export interface SignatureScheme {
  readonly digest: DigestName;
  /** DER of the SignerInfo signatureAlgorithm. */
  readonly algorithmDer: Buffer;
  /** Signs the DER of the signed attributes. */
  sign(data: Buffer): Promise<Buffer>;
}

function pssParams(d: DigestName): Buffer {
  return der.seq(
    der.context(0, der.algorithm(DIGEST_OID[d])),
    der.context(1, der.algorithm(OID.mgf1, der.algorithm(DIGEST_OID[d]))),
    der.context(2, der.int(DIGEST_LENGTH[d])),
  );
}

function signAsync(
  alg: string | null,
  data: Buffer,
  key: Parameters<typeof sign>[2],
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(alg, data, key, (err, signature) => (err ? reject(err) : resolve(signature)));
  });
}

export interface SchemeOptions {
  readonly digest?: DigestName;
  /** RSA keys only: RSASSA-PSS instead of PKCS#1 v1.5. */
  readonly rsaPss?: boolean;
}

/** How a given private key signs (RFC 8551 / 8419 / 5754 algorithm choices). */
export function signatureScheme(key: KeyObject, opts: SchemeOptions = {}): SignatureScheme {
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') {
    // RFC 8419: with signed attributes, Ed25519 pairs with SHA-512.
    return {
      digest: 'sha512',
      algorithmDer: der.algorithm(OID.ed25519),
      sign: (data) => signAsync(null, data, key),
    };
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const d: DigestName = opts.digest ?? (curve === 'secp384r1' ? 'sha384' : 'sha256');
    const sigOid = {
      sha256: OID.ecdsaWithSha256,
      sha384: OID.ecdsaWithSha384,
      sha512: OID.ecdsaWithSha512,
      sha1: '',
    }[d];
    if (!sigOid) throw new CmsError('unsupported', `ECDSA with ${d}`);
    return {
      digest: d,
      algorithmDer: der.algorithm(sigOid),
      sign: (data) => signAsync(d, data, { key, dsaEncoding: 'der' }),
    };
  }
  if (type === 'rsa' || type === 'rsa-pss') {
    const d = opts.digest ?? 'sha256';
    if (opts.rsaPss || type === 'rsa-pss') {
      return {
        digest: d,
        algorithmDer: der.algorithm(OID.rsassaPss, pssParams(d)),
        sign: (data) =>
          signAsync(d, data, {
            key,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: DIGEST_LENGTH[d],
          }),
      };
    }
    return {
      digest: d,
      // rsaEncryption with NULL parameters, as OpenSSL and most clients write it.
      algorithmDer: der.algorithm(OID.rsaEncryption, der.nullValue()),
      sign: (data) => signAsync(d, data, key),
    };
  }
  throw new CmsError('unsupported', `signing with a ${type} key`);
}

const RSA_SIG_DIGEST: Readonly<Record<string, VerifyDigestName>> = {
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
  [OID.sha1WithRSAEncryption]: 'sha1',
  [OID.md5WithRSAEncryption]: 'md5',
};
const ECDSA_SIG_DIGEST: Readonly<Record<string, VerifyDigestName>> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
  [OID.ecdsaWithSha1]: 'sha1',
};

/** The digest a signature algorithm names itself (sha256WithRSAEncryption...); undefined if it names none. */
export function signatureDigest(sigAlgOid: string): VerifyDigestName | undefined {
  return RSA_SIG_DIGEST[sigAlgOid] ?? ECDSA_SIG_DIGEST[sigAlgOid];
}

export interface PssParameters {
  readonly digest: DigestName;
  readonly saltLength: number;
}

/**
 * Verifies `signature` over `data`. `digestName` comes from the SignerInfo's
 * digestAlgorithm; the signature algorithm may override it (sha256WithRSA...).
 */
export function verifySignature(
  data: Buffer,
  signature: Buffer,
  sigAlgOid: string,
  digestName: VerifyDigestName,
  publicKey: KeyObject,
  pss?: PssParameters,
): boolean {
  try {
    if (sigAlgOid === OID.ed25519) return verify(null, data, publicKey, signature);
    if (sigAlgOid === OID.rsaEncryption || RSA_SIG_DIGEST[sigAlgOid]) {
      return verify(RSA_SIG_DIGEST[sigAlgOid] ?? digestName, data, publicKey, signature);
    }
    if (sigAlgOid === OID.rsassaPss) {
      const p = pss ?? { digest: 'sha1', saltLength: 20 };
      return verify(
        p.digest,
        data,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength },
        signature,
      );
    }
    if (sigAlgOid === OID.ecPublicKey || ECDSA_SIG_DIGEST[sigAlgOid]) {
      return verify(
        ECDSA_SIG_DIGEST[sigAlgOid] ?? digestName,
        data,
        { key: publicKey, dsaEncoding: 'der' },
        signature,
      );
    }
  } catch {
    // A key of the wrong type for the algorithm, or a malformed signature: not valid.
    return false;
  }
  throw new CmsError('unsupported', `signature algorithm ${sigAlgOid}`);
}
