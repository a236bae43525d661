/**
 * SignedData verification: every SignerInfo is checked (messageDigest over
 * the content, signature over the DER signed attributes, contentType
 * attribute), and its certificate handed to an injected validator for the
 * path. Structural problems throw CmsError; a bad signer is a report entry.
 */

import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { type Asn1Limits, CmsError, DEFAULT_ASN1_LIMITS, encodedBytes, parseBer } from './asn1.js';
import { type CertificateInfo, identifies } from './certificate.js';
import { octetStringContent, parseContentInfo } from './content-info.js';
import type { CertificateId } from './der-fields.js';
import { readTlv, timeOf } from './der-reader.js';
import { OID, SIGNATURE_TYPE_NAMES } from './oids.js';
import {
  digest,
  digestByOid,
  type PssParameters,
  signatureDigest,
  type VerifyDigestName,
  verifyDigestByOid,
  verifySignature,
} from './signature-algorithms.js';
import {
  type CertificateSetLimits,
  DEFAULT_CERTIFICATE_SET_LIMITS,
  selectCertificates,
} from './signed-data-certificates.js';
import { splitSignedData } from './signed-data-split.js';
import {
  type AttributeView,
  capabilityIdsValue,
  octetsValue,
  oidValue,
  readSignedData as readSignedDataDer,
  readSignerInfo,
  type SignerInfoView,
} from './signer-info.js';

export interface ChainVerdict {
  readonly trusted: boolean;
  readonly reason?: string;
  /** Leaf first, anchor last. */
  readonly path?: readonly CertificateInfo[];
  /** What else was learnt on the way (e.g. revocation status of each certificate). */
  readonly notes?: readonly string[];
  /** Not trusted for now: a retry may succeed (e.g. revocation responders down, hard-fail). */
  readonly temporary?: boolean;
  /** Not trusted because a certificate on the path is revoked. */
  readonly revoked?: boolean;
  /**
   * Trusted, but a responder could not confirm a certificate's status
   * (soft-fail): said with the result, so the reader knows it was not checked.
   */
  readonly caveat?: string;
}

/** Decides whether a signer certificate chains to something we trust. */
export interface CertificateValidator {
  validate(
    leaf: CertificateInfo,
    pool: readonly CertificateInfo[],
    at: Date,
  ): Promise<ChainVerdict>;
}

export interface SignerReport {
  /** Signature and digest valid (the chain is judged separately in `chain`). */
  readonly valid: boolean;
  readonly failure?: { readonly code: string; readonly message: string };
  readonly certificate?: CertificateInfo;
  readonly chain?: ChainVerdict;
  readonly digestAlgorithm: string;
  readonly signatureAlgorithm: string;
  /** RFC 3183 signature types by name: originator, domain, additional-attributes, review. */
  readonly signatureTypes: readonly string[];
  readonly signedAttributes: readonly string[];
  readonly signingTime?: Date;
  /** SMIMECapabilities announced by the signer, OIDs in order of preference. */
  readonly capabilities: readonly string[];
  /** DER Attributes RFC 3183 says a domain signer copies: security labels, ML expansion history. */
  readonly copyableAttributes: readonly Buffer[];
  /** A digest no longer accepted (sha1, md5), by the digest or the signature algorithm. */
  readonly weakAlgorithm?: string;
}

export interface VerifyResult {
  readonly contentType: string;
  readonly content: Buffer;
  readonly detached: boolean;
  readonly signers: readonly SignerReport[];
  readonly certificates: readonly CertificateInfo[];
  /** What a bound left unread (extra signers, certificates), for the report. */
  readonly notes: readonly string[];
}

export interface VerifyOptions {
  readonly detachedContent?: Buffer;
  readonly validator?: CertificateValidator;
  readonly at?: Date;
  readonly limits?: Asn1Limits;
  /** Certificates known from elsewhere (a directory, earlier mail) for signers that sent none. */
  readonly knownCertificates?: readonly CertificateInfo[];
  readonly signedDataLimits?: SignedDataLimits;
}

/** What one SignedData may make us do: a hostile message chooses these counts. */
export interface SignedDataLimits extends CertificateSetLimits {
  /** SignerInfos checked; the rest are ignored, with a note. */
  readonly maxSigners: number;
}

export const DEFAULT_SIGNED_DATA_LIMITS: SignedDataLimits = {
  ...DEFAULT_CERTIFICATE_SET_LIMITS,
  maxSigners: 8,
};

function pssParameters(params: Buffer | undefined, limits: Asn1Limits): PssParameters | undefined {
  if (!params) return undefined;
  let p: pkijs.RSASSAPSSParams;
  try {
    const asn = parseBer(params, 'RSASSA-PSS parameters', limits);
    if (!(asn instanceof asn1js.Sequence)) return undefined;
    p = new pkijs.RSASSAPSSParams({ schema: asn });
  } catch {
    throw new CmsError('malformed', 'RSASSA-PSS parameters');
  }
  return { digest: digestByOid(p.hashAlgorithm.algorithmId), saltLength: p.saltLength };
}

/** The first value of the first attribute of `type` (attribute values are whatever the sender put). */
function firstValue(attrs: readonly AttributeView[] | undefined, type: string): Buffer | undefined {
  return attrs?.find((a) => a.type === type)?.values[0];
}

function timeValue(value: Buffer | undefined): Date | undefined {
  if (!value) return undefined;
  try {
    const t = readTlv(value, 0);
    return t.tag === 0x17 || t.tag === 0x18 ? timeOf(value, t) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The certificates that may be the signer's: named exactly as sent first,
 * then by an equal issuer name; at most `max`. Several can match (the
 * certificate set is unsigned: a relay may add an altered copy), so each is
 * tried and the signature decides.
 */
function signerCandidates(
  sid: CertificateId,
  certs: readonly CertificateInfo[],
  max: number,
): CertificateInfo[] {
  const exact = certs.filter((c) => identifies(sid, c, false));
  const byName = certs.filter((c) => !exact.includes(c) && identifies(sid, c));
  const seen = new Set<string>();
  return [...exact, ...byName]
    .filter((c) => !seen.has(c.fingerprint) && seen.add(c.fingerprint))
    .slice(0, max);
}

/** Digests no longer accepted for signatures (RFC 8551 2.1; CA/B Forum S/MIME BR). */
const WEAK_DIGESTS: ReadonlySet<VerifyDigestName> = new Set(['sha1', 'md5']);

/** The weak digest a signer used, by its digestAlgorithm or its signature algorithm; else undefined. */
function weakAlgorithm(
  digestName: VerifyDigestName,
  signatureAlgorithm: string,
  pss: PssParameters | undefined,
): string | undefined {
  const used = [digestName, signatureDigest(signatureAlgorithm), pss?.digest];
  return used.find((d): d is VerifyDigestName => d !== undefined && WEAK_DIGESTS.has(d));
}

interface SignerCheck {
  readonly report: SignerReport;
  /** Every candidate certificate the signature verified with, in the order tried. */
  readonly verifiedWith: readonly CertificateInfo[];
}

function checkSigner(
  si: SignerInfoView,
  content: Buffer,
  eContentType: string,
  certs: readonly CertificateInfo[],
  limits: Asn1Limits,
  maxCandidates: number,
): SignerCheck {
  const digestName = verifyDigestByOid(si.digestAlgorithm);
  const attrs = si.signedAttrs?.attributes;
  const candidates = signerCandidates(si.sid, certs, maxCandidates);
  const signingTime = timeValue(firstValue(attrs, OID.signingTime));
  const pss =
    si.signatureAlgorithm === OID.rsassaPss ? pssParameters(si.signatureParams, limits) : undefined;
  const weak = weakAlgorithm(digestName, si.signatureAlgorithm, pss);
  const base = {
    certificate: candidates[0],
    digestAlgorithm: si.digestAlgorithm,
    signatureAlgorithm: si.signatureAlgorithm,
    signedAttributes: attrs?.map((a) => a.type) ?? [],
    signatureTypes: (attrs?.find((a) => a.type === OID.signatureType)?.values ?? []).flatMap(
      (v) => {
        const id = oidValue(v);
        return id ? [SIGNATURE_TYPE_NAMES[id] ?? id] : [];
      },
    ),
    ...(signingTime ? { signingTime } : {}),
    ...(weak ? { weakAlgorithm: weak } : {}),
    capabilities: capabilityIdsValue(firstValue(attrs, OID.smimeCapabilities)),
    copyableAttributes: (attrs ?? [])
      .filter((a) => a.type === OID.securityLabel || a.type === OID.mlExpansionHistory)
      .map((a) => Buffer.from(a.encoding)),
  };
  const fail = (code: string, message: string): SignerCheck => ({
    report: { ...base, valid: false, failure: { code, message } },
    verifiedWith: [],
  });
  if (candidates.length === 0)
    return fail('no-signer-certificate', 'the signer certificate is not in the message');
  const contentDigest = digest(digestName, content);
  let signedData: Buffer;
  if (si.signedAttrs) {
    const md = octetsValue(firstValue(attrs, OID.messageDigest));
    if (!md?.equals(contentDigest)) {
      return fail('digest-mismatch', 'the content does not match the signed message digest');
    }
    if (oidValue(firstValue(attrs, OID.contentType)) !== eContentType) {
      return fail('bad-signature', 'the contentType attribute does not match the content');
    }
    signedData = si.signedAttrs.signed;
  } else {
    signedData = content;
  }
  const verifiedWith = candidates.filter((c) =>
    verifySignature(signedData, si.signature, si.signatureAlgorithm, digestName, c.publicKey, pss),
  );
  if (verifiedWith.length === 0)
    return fail('bad-signature', 'the signature does not verify with the signer certificate');
  return { report: { ...base, certificate: verifiedWith[0], valid: true }, verifiedWith };
}

/**
 * The chain verdict of a verified signer: each certificate the signature
 * verified with is validated in turn, and the first trusted one decides;
 * when none is, the first one's verdict stands.
 */
async function judgeChain(
  check: SignerCheck,
  pool: readonly CertificateInfo[],
  validator: CertificateValidator,
  at: Date,
): Promise<SignerReport> {
  let first: { certificate: CertificateInfo; chain: ChainVerdict } | undefined;
  for (const certificate of check.verifiedWith) {
    const chain = await validator.validate(certificate, pool, at);
    if (chain.trusted) return { ...check.report, certificate, chain };
    first ??= { certificate, chain };
  }
  return first ? { ...check.report, ...first } : check.report;
}

/** What verifySignedData needs of a SignedData, from either reader. */
interface SignedDataParts {
  readonly eContentType: string;
  readonly eContent: Buffer | undefined;
  readonly certificates: readonly Buffer[];
  readonly signerInfos: readonly Buffer[];
}

/** The asn1js reading, for SignedData that is not DER throughout (BER from `-stream`, gpgsm). */
function readSignedDataBer(der: Uint8Array, limits: Asn1Limits): SignedDataParts {
  const split = splitSignedData(der);
  const ci = parseContentInfo(split ? split.rest : der, limits);
  if (ci.contentType !== OID.signedData)
    throw new CmsError('unsupported', `content type ${ci.contentType} is not SignedData`);
  const fields = ci.content instanceof asn1js.Sequence ? ci.content.valueBlock.value : [];
  const encap = fields[2];
  const signerInfos = fields.at(-1);
  if (
    !(fields[0] instanceof asn1js.Integer) ||
    !(encap instanceof asn1js.Sequence) ||
    !(signerInfos instanceof asn1js.Set)
  ) {
    throw new CmsError('malformed', 'SignedData structure');
  }
  const [type, wrapped] = encap.valueBlock.value;
  if (!(type instanceof asn1js.ObjectIdentifier))
    throw new CmsError('malformed', 'EncapsulatedContentInfo structure');
  let eContent: Buffer | undefined;
  if (wrapped) {
    if (wrapped.idBlock.tagClass !== 3 || wrapped.idBlock.tagNumber !== 0)
      throw new CmsError('malformed', 'eContent is not [0]');
    const inner = (wrapped as asn1js.Constructed).valueBlock.value?.[0];
    eContent = inner ? octetStringContent(inner) : undefined;
  }
  const certificates = split
    ? split.certificates
    : (
        (
          fields.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0) as
            | asn1js.Constructed
            | undefined
        )?.valueBlock.value ?? []
      )
        .filter((c) => c instanceof asn1js.Sequence)
        .map((c) => Buffer.from(encodedBytes(c)));
  return {
    eContentType: type.valueBlock.toString(),
    eContent,
    certificates,
    signerInfos: signerInfos.valueBlock.value.map((si) => encodedBytes(si)),
  };
}

function failedReport(si: SignerInfoView | undefined, err: CmsError): SignerReport {
  return {
    valid: false,
    failure: { code: err.code, message: err.message },
    digestAlgorithm: si?.digestAlgorithm ?? '',
    signatureAlgorithm: si?.signatureAlgorithm ?? '',
    signatureTypes: [],
    signedAttributes: [],
    capabilities: [],
    copyableAttributes: [],
  };
}

export async function verifySignedData(
  der: Uint8Array,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const limits = opts.limits ?? DEFAULT_ASN1_LIMITS;
  const bounds = opts.signedDataLimits ?? DEFAULT_SIGNED_DATA_LIMITS;
  // DER (the usual case) is read by position; anything else through asn1js.
  const sd = readSignedDataDer(der) ?? readSignedDataBer(der, limits);
  const eContent = sd.eContent;
  if (opts.detachedContent && eContent) {
    // CVE-2018-18509 pattern: content inside and outside; which one was signed is ambiguous.
    throw new CmsError('malformed', 'a detached signature must not carry content of its own');
  }
  const content = opts.detachedContent ?? eContent;
  if (!content)
    throw new CmsError('malformed', 'SignedData without content and no detached content given');
  const notes: string[] = [];
  const signerInfos = sd.signerInfos.slice(0, bounds.maxSigners);
  if (sd.signerInfos.length > signerInfos.length)
    notes.push(
      `${sd.signerInfos.length - signerInfos.length} of ${sd.signerInfos.length} signers not checked (at most ${bounds.maxSigners})`,
    );
  const views = signerInfos.map((bytes) => readSignerInfo(bytes));
  const set = selectCertificates(
    sd.certificates,
    views.map((v) => v?.sid),
    bounds,
  );
  notes.push(...set.notes);
  const certificates = set.certificates;
  const pool = opts.knownCertificates ? [...certificates, ...opts.knownCertificates] : certificates;
  const at = opts.at ?? new Date();
  const signers: SignerReport[] = [];
  for (const si of views) {
    let check: SignerCheck;
    try {
      if (!si) throw new CmsError('malformed', 'SignerInfo is not DER of the expected shape');
      if (si.refused) throw si.refused;
      check = checkSigner(si, content, sd.eContentType, pool, limits, bounds.maxCandidates);
    } catch (err) {
      if (!(err instanceof CmsError)) throw err;
      check = { report: failedReport(si, err), verifiedWith: [] };
    }
    signers.push(
      opts.validator && check.report.valid
        ? await judgeChain(check, certificates, opts.validator, at)
        : check.report,
    );
  }
  return {
    contentType: sd.eContentType,
    content,
    detached: opts.detachedContent !== undefined,
    signers,
    certificates,
    notes,
  };
}
