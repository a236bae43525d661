/**
 * OCSP (RFC 6960) as a client: build a request for one certificate with a
 * nonce (RFC 8954), and judge the answer. A response counts only when it is
 * signed by the issuer itself or by a responder the issuer authorised
 * (id-kp-OCSPSigning), names our certificate, echoes our nonce when it
 * carries one, and is current (thisUpdate not in the future, nextUpdate not
 * past). `unknown` means the responder does not know the certificate: not
 * revoked, and not good either.
 */

import { createHash, randomBytes } from 'node:crypto';
import { CmsError } from '../../cms/asn1.js';
import { type CertificateInfo, loadCertificate } from '../../cms/certificate.js';
import * as der from '../../cms/der.js';
import {
  childrenOf,
  contentOf,
  encodingOf,
  oidText,
  readTlv,
  type Tlv,
  timeOf,
} from '../../cms/der-reader.js';
import { OID } from '../../cms/oids.js';
import { REASON_NAMES } from './crl.js';
import { signedBy, signedParts } from './signed-object.js';

const OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';
const KP_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const HASHES: Readonly<Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'>> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};
const RESPONSE_STATUS = [
  'successful',
  'malformedRequest',
  'internalError',
  'tryLater',
  '(unused)',
  'sigRequired',
  'unauthorized',
];

/**
 * Certificates of a response looked at for its signer: a responder sends
 * its own, at most with its chain; the rest are ignored.
 */
export const MAX_OCSP_CERTIFICATES = 8;

export class OcspError extends Error {
  override readonly name = 'OcspError';
}

export type OcspCertStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly revokedAt: Date; readonly reason?: string }
  | { readonly status: 'unknown' };

export type OcspAnswer = OcspCertStatus & {
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  /** Whether the response echoed our nonce (false: the responder sent none). */
  readonly nonceEchoed: boolean;
};

/** The issuer's subjectPublicKey BIT STRING content, without the unused-bits octet. */
function issuerKeyBits(issuer: CertificateInfo): Buffer {
  const spki = issuer.publicKey.export({ type: 'spki', format: 'der' });
  const [, bits] = childrenOf(spki, readTlv(spki, 0));
  if (bits?.tag !== 0x03) throw new CmsError('malformed', 'issuer public key');
  return Buffer.from(contentOf(spki, bits).subarray(1));
}

interface CertIdParts {
  readonly nameHash: Buffer;
  readonly keyHash: Buffer;
  readonly serial: Buffer;
}

function certIdFor(cert: CertificateInfo, issuer: CertificateInfo, hash: string): CertIdParts {
  return {
    nameHash: createHash(hash).update(cert.issuerDer).digest(),
    keyHash: createHash(hash).update(issuerKeyBits(issuer)).digest(),
    serial: cert.serial,
  };
}

export interface OcspRequest {
  readonly der: Buffer;
  readonly nonce: Buffer;
}

/** An OCSPRequest for `cert` (SHA-1 CertID, as every responder understands) with a fresh nonce. */
export function ocspRequest(cert: CertificateInfo, issuer: CertificateInfo): OcspRequest {
  const nonce = randomBytes(16);
  const id = certIdFor(cert, issuer, 'sha1');
  const certId = der.seq(
    der.algorithm(OID.sha1, der.nullValue()),
    der.octets(id.nameHash),
    der.octets(id.keyHash),
    der.intBytes(id.serial),
  );
  const nonceExtension = der.seq(der.oid(OCSP_NONCE), der.octets(der.octets(nonce)));
  const tbsRequest = der.seq(der.seq(der.seq(certId)), der.context(2, der.seq(nonceExtension)));
  return { der: der.seq(tbsRequest), nonce };
}

function fail(what: string): never {
  throw new OcspError(what);
}

/** `[n]` EXPLICIT wrapper's single child. */
function unwrap(bytes: Uint8Array, tlv: Tlv): Tlv {
  const inner = childrenOf(bytes, tlv)[0];
  if (!inner) fail('empty explicit tag in response');
  return inner;
}

interface SingleResponse {
  readonly hash: string;
  readonly id: CertIdParts;
  readonly status: OcspCertStatus;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
}

function singleResponse(bytes: Uint8Array, tlv: Tlv): SingleResponse {
  const [certId, certStatus, thisUpdate, ...rest] = childrenOf(bytes, tlv);
  if (certId?.tag !== 0x30 || !certStatus || thisUpdate?.tag !== 0x18) fail('SingleResponse');
  const [alg, nameHash, keyHash, serial] = childrenOf(bytes, certId);
  const algOid = alg ? childrenOf(bytes, alg)[0] : undefined;
  if (
    algOid?.tag !== 0x06 ||
    nameHash?.tag !== 0x04 ||
    keyHash?.tag !== 0x04 ||
    serial?.tag !== 0x02
  )
    fail('CertID');
  let status: OcspCertStatus;
  if (certStatus.tag === 0x80) status = { status: 'good' };
  else if (certStatus.tag === 0xa1) {
    const [time, reason] = childrenOf(bytes, certStatus);
    if (time?.tag !== 0x18) fail('RevokedInfo');
    const code = reason ? bytes[unwrap(bytes, reason).contentStart] : undefined;
    status = {
      status: 'revoked',
      revokedAt: timeOf(bytes, time),
      ...(code !== undefined ? { reason: REASON_NAMES[code] ?? `reason ${code}` } : {}),
    };
  } else if (certStatus.tag === 0x82) status = { status: 'unknown' };
  else fail('certStatus');
  const next = rest.find((t) => t.tag === 0xa0);
  const nextUpdate = next ? timeOf(bytes, unwrap(bytes, next)) : undefined;
  return {
    hash: oidText(contentOf(bytes, algOid)),
    id: {
      nameHash: Buffer.from(contentOf(bytes, nameHash)),
      keyHash: Buffer.from(contentOf(bytes, keyHash)),
      serial: Buffer.from(contentOf(bytes, serial)),
    },
    status,
    thisUpdate: timeOf(bytes, thisUpdate),
    ...(nextUpdate ? { nextUpdate } : {}),
  };
}

function nonceOf(bytes: Uint8Array, extensionsTlv: Tlv): Buffer | undefined {
  for (const ext of childrenOf(bytes, unwrap(bytes, extensionsTlv))) {
    const parts = childrenOf(bytes, ext);
    if (parts[0]?.tag !== 0x06 || oidText(contentOf(bytes, parts[0])) !== OCSP_NONCE) continue;
    const value = contentOf(bytes, parts[parts.length - 1]!);
    // RFC 8954: extnValue holds an OCTET STRING; some responders put the raw nonce there.
    if (value[0] === 0x04) {
      const inner = readTlv(value, 0);
      if (inner.end === value.length) return Buffer.from(contentOf(value, inner));
    }
    return Buffer.from(value);
  }
  return undefined;
}

function authorisedBy(
  responder: CertificateInfo,
  issuer: CertificateInfo,
  at: Date,
): string | undefined {
  if (!responder.issuerDer.equals(issuer.subjectDer) || !responder.x509.verify(issuer.publicKey))
    return 'responder certificate not issued by the certificate issuer';
  if (at < responder.notBefore || at > responder.notAfter)
    return 'responder certificate outside its validity period';
  const eku = responder.x509.keyUsage ?? [];
  if (!eku.includes(KP_OCSP_SIGNING)) return 'responder certificate lacks id-kp-OCSPSigning';
  return undefined;
}

export interface JudgeOptions {
  readonly cert: CertificateInfo;
  readonly issuer: CertificateInfo;
  readonly nonce: Buffer | undefined;
  readonly at: Date;
  /** Tolerated clock difference with the responder. */
  readonly skewMs: number;
}

/** Reads and checks an OCSPResponse; throws OcspError for anything that cannot be relied on. */
export function judgeOcspResponse(bytes: Uint8Array, o: JudgeOptions): OcspAnswer {
  let outerTlv: Tlv;
  try {
    outerTlv = readTlv(bytes, 0);
  } catch {
    fail('response is not DER');
  }
  if (outerTlv.tag !== 0x30 || outerTlv.end !== bytes.length) fail('response is not one SEQUENCE');
  try {
    return judge(bytes, outerTlv, o);
  } catch (err) {
    if (err instanceof OcspError) throw err;
    throw new OcspError(err instanceof Error ? err.message : String(err));
  }
}

function judge(bytes: Uint8Array, outerTlv: Tlv, o: JudgeOptions): OcspAnswer {
  const [statusTlv, responseBytes] = childrenOf(bytes, outerTlv);
  if (statusTlv?.tag !== 0x0a) fail('responseStatus');
  const code = bytes[statusTlv.contentStart] ?? 0;
  if (code !== 0) fail(`responder answered ${RESPONSE_STATUS[code] ?? `status ${code}`}`);
  if (responseBytes?.tag !== 0xa0) fail('successful response without responseBytes');
  const [type, octets] = childrenOf(bytes, unwrap(bytes, responseBytes));
  if (type?.tag !== 0x06 || octets?.tag !== 0x04) fail('responseBytes');
  if (oidText(contentOf(bytes, type)) !== OCSP_BASIC) fail('response is not a basic OCSP response');

  const basic = contentOf(bytes, octets);
  const basicTlv = readTlv(basic, 0);
  const signed = signedParts(basic, basicTlv, 'OCSP response');
  const basicFields = childrenOf(basic, basicTlv);
  const certsTlv = basicFields.find((t) => t.tag === 0xa0);
  // Parsed before the signature is checked (a parse costs ~1 ms): the first few only.
  const included: CertificateInfo[] = certsTlv
    ? childrenOf(basic, unwrap(basic, certsTlv), MAX_OCSP_CERTIFICATES).map((c) =>
        loadCertificate(Buffer.from(encodingOf(basic, c))),
      )
    : [];

  const tbs = childrenOf(basic, readTlv(basic, basicTlv.contentStart, basicTlv.end));
  let i = 0;
  if (tbs[i]?.tag === 0xa0) i++; // version
  const responderId = tbs[i++];
  const producedAt = tbs[i++];
  const responses = tbs[i++];
  const extensionsTlv = tbs[i]?.tag === 0xa1 ? tbs[i] : undefined;
  if (!responderId || producedAt?.tag !== 0x18 || responses?.tag !== 0x30) fail('ResponseData');

  // Who signed: the issuer itself, or a responder certificate from the response that it authorised.
  const byIssuer = signedBy(signed, o.issuer.publicKey, 'OCSP response');
  if (!byIssuer) {
    const signer = included.find((c) => signedBy(signed, c.publicKey, 'OCSP response'));
    if (!signer)
      fail('response signature does not verify with the issuer or an included responder');
    const problem = authorisedBy(signer, o.issuer, o.at);
    if (problem) fail(problem);
  }

  const nonce = extensionsTlv ? nonceOf(basic, extensionsTlv) : undefined;
  if (nonce && o.nonce && !nonce.equals(o.nonce))
    fail('response nonce does not match the request (replay?)');

  const single = childrenOf(basic, responses)
    .map((r) => singleResponse(basic, r))
    .find((r) => {
      const hash = HASHES[r.hash];
      if (!hash) return false;
      const want = certIdFor(o.cert, o.issuer, hash);
      return (
        r.id.serial.equals(want.serial) &&
        r.id.nameHash.equals(want.nameHash) &&
        r.id.keyHash.equals(want.keyHash)
      );
    });
  if (!single) fail('response does not name the certificate asked about');
  if (single.thisUpdate.getTime() > o.at.getTime() + o.skewMs)
    fail('response thisUpdate is in the future');
  if (single.nextUpdate && single.nextUpdate.getTime() < o.at.getTime() - o.skewMs)
    fail(`response is stale (nextUpdate ${single.nextUpdate.toISOString()})`);
  return {
    ...single.status,
    thisUpdate: single.thisUpdate,
    ...(single.nextUpdate ? { nextUpdate: single.nextUpdate } : {}),
    nonceEchoed: nonce !== undefined,
  };
}
