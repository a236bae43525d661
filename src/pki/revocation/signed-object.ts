/**
 * The signature of a PKIX signed object (CRL, OCSP basic response): the
 * to-be-signed bytes exactly as received, the algorithm, the BIT STRING.
 */

import type { KeyObject } from 'node:crypto';
import { CmsError, toBuffer } from '../../cms/asn1.js';
import { childrenOf, contentOf, oidText, type Tlv } from '../../cms/der-reader.js';
import { OID } from '../../cms/oids.js';
import { verifySignature } from '../../cms/signature-algorithms.js';

export interface SignedParts {
  readonly tbs: Uint8Array;
  readonly algorithm: string;
  readonly signature: Uint8Array;
}

/** Reads `SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING, ... }` at `outer`. */
export function signedParts(der: Uint8Array, outer: Tlv, what: string): SignedParts {
  const [tbs, alg, sig] = childrenOf(der, outer);
  if (!tbs || alg?.tag !== 0x30 || sig?.tag !== 0x03)
    throw new CmsError('malformed', `${what} structure`);
  const algOid = childrenOf(der, alg)[0];
  if (algOid?.tag !== 0x06) throw new CmsError('malformed', `${what} signature algorithm`);
  const bits = contentOf(der, sig);
  if (bits[0] !== 0) throw new CmsError('malformed', `${what} signature has unused bits`);
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithm: oidText(contentOf(der, algOid)),
    signature: bits.subarray(1),
  };
}

const SUPPORTED = new Set<string>([
  OID.sha256WithRSAEncryption,
  OID.sha384WithRSAEncryption,
  OID.sha512WithRSAEncryption,
  OID.sha1WithRSAEncryption,
  OID.ecdsaWithSha256,
  OID.ecdsaWithSha384,
  OID.ecdsaWithSha512,
  OID.ed25519,
]);

/** True when `key` made the signature; an algorithm we do not know is an error, not a "no". */
export function signedBy(parts: SignedParts, key: KeyObject, what: string): boolean {
  if (!SUPPORTED.has(parts.algorithm))
    throw new CmsError('unsupported', `${what} signature algorithm ${parts.algorithm}`);
  return verifySignature(
    toBuffer(parts.tbs),
    toBuffer(parts.signature),
    parts.algorithm,
    'sha256',
    key,
  );
}
