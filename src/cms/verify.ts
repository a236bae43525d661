/**
 * SignedData verification: every SignerInfo is checked (messageDigest over
 * the content, signature over the DER signed attributes, contentType
 * attribute), and its certificate handed to an injected validator for the
 * path. Structural problems throw CmsError; a bad signer is a report entry.
 */

import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { type Asn1Limits, CmsError, DEFAULT_ASN1_LIMITS, encodedBytes, toBuffer } from './asn1.js';
import { type CertificateInfo, loadCertificate } from './certificate.js';
import { octetStringContent, parseContentInfo } from './content-info.js';
import { OID, SIGNATURE_TYPE_NAMES } from './oids.js';
import {
  type DigestName,
  digest,
  digestByOid,
  type PssParameters,
  verifySignature,
} from './signature-algorithms.js';
import { splitSignedData } from './signed-data-split.js';

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
}

export interface VerifyResult {
  readonly contentType: string;
  readonly content: Buffer;
  readonly detached: boolean;
  readonly signers: readonly SignerReport[];
  readonly certificates: readonly CertificateInfo[];
}

export interface VerifyOptions {
  readonly detachedContent?: Buffer;
  readonly validator?: CertificateValidator;
  readonly at?: Date;
  readonly limits?: Asn1Limits;
  /** Certificates known from elsewhere (a directory, earlier mail) for signers that sent none. */
  readonly knownCertificates?: readonly CertificateInfo[];
}

function attrValues(attrs: pkijs.Attribute[] | undefined, type: string): asn1js.AsnType[] {
  return (attrs?.find((a) => a.type === type)?.values as asn1js.AsnType[] | undefined) ?? [];
}

function pssParameters(params: unknown): PssParameters | undefined {
  if (!(params instanceof asn1js.Sequence)) return undefined;
  let p: pkijs.RSASSAPSSParams;
  try {
    p = new pkijs.RSASSAPSSParams({ schema: params });
  } catch {
    throw new CmsError('malformed', 'RSASSA-PSS parameters');
  }
  return { digest: digestByOid(p.hashAlgorithm.algorithmId), saltLength: p.saltLength };
}

// Attribute values are whatever the sender put there: each is read only if it has the right type.
const oidOf = (v: unknown): string | undefined =>
  v instanceof asn1js.ObjectIdentifier ? v.valueBlock.toString() : undefined;

const timeOf = (v: unknown): Date | undefined =>
  v instanceof asn1js.UTCTime || v instanceof asn1js.GeneralizedTime ? v.toDate() : undefined;

/** SMIMECapabilities ::= SEQUENCE OF SEQUENCE { capabilityID OID, parameters ANY OPTIONAL } */
function capabilityIds(v: unknown): string[] {
  if (!(v instanceof asn1js.Sequence)) return [];
  return v.valueBlock.value.flatMap((c) => {
    const id = c instanceof asn1js.Sequence ? oidOf(c.valueBlock.value[0]) : undefined;
    return id ? [id] : [];
  });
}

function findSignerCertificate(
  sid: unknown,
  certs: readonly CertificateInfo[],
): CertificateInfo | undefined {
  if (sid instanceof pkijs.IssuerAndSerialNumber) {
    const issuer = toBuffer(sid.issuer.toSchema().toBER(false));
    const serial = toBuffer(sid.serialNumber.valueBlock.valueHexView);
    return certs.find(
      (c) => c.serial.equals(serial) && (c.issuerDer.equals(issuer) || sameName(c, sid.issuer)),
    );
  }
  // [0] SubjectKeyIdentifier: a primitive OCTET STRING; anything else cannot name a certificate.
  const view = (sid as asn1js.Primitive | undefined)?.valueBlock?.valueHexView;
  if (!(sid instanceof asn1js.BaseBlock) || sid.idBlock.isConstructed || !view)
    throw new CmsError(
      'malformed',
      'SignerIdentifier is neither issuer and serial nor a key identifier',
    );
  const ski = toBuffer(view);
  return certs.find((c) => c.subjectKeyId?.equals(ski));
}

function sameName(cert: CertificateInfo, name: pkijs.RelativeDistinguishedNames): boolean {
  return cert.pkijs.issuer.isEqual(name);
}

function checkSigner(
  si: pkijs.SignerInfo,
  content: Buffer,
  eContentType: string,
  certs: readonly CertificateInfo[],
) {
  const digestName: DigestName = digestByOid(si.digestAlgorithm.algorithmId);
  const attrs = si.signedAttrs?.attributes;
  const certificate = findSignerCertificate(si.sid, certs);
  const base = {
    certificate,
    digestAlgorithm: si.digestAlgorithm.algorithmId,
    signatureAlgorithm: si.signatureAlgorithm.algorithmId,
    signedAttributes: attrs?.map((a) => a.type) ?? [],
    signatureTypes: attrValues(attrs, OID.signatureType).flatMap((v) => {
      const id = oidOf(v);
      return id ? [SIGNATURE_TYPE_NAMES[id] ?? id] : [];
    }),
    signingTime: timeOf(attrValues(attrs, OID.signingTime)[0]),
    capabilities: capabilityIds(attrValues(attrs, OID.smimeCapabilities)[0]),
    copyableAttributes: (attrs ?? [])
      .filter((a) => a.type === OID.securityLabel || a.type === OID.mlExpansionHistory)
      .map((a) => toBuffer(a.toSchema().toBER(false))),
  };
  const fail = (code: string, message: string): SignerReport => ({
    ...base,
    valid: false,
    failure: { code, message },
  });
  if (!certificate)
    return fail('no-signer-certificate', 'the signer certificate is not in the message');
  const contentDigest = digest(digestName, content);
  let signedData: Buffer;
  if (si.signedAttrs) {
    const md = attrValues(attrs, OID.messageDigest)[0];
    if (
      !(md instanceof asn1js.OctetString) ||
      !toBuffer(md.valueBlock.valueHexView).equals(contentDigest)
    ) {
      return fail('digest-mismatch', 'the content does not match the signed message digest');
    }
    if (oidOf(attrValues(attrs, OID.contentType)[0]) !== eContentType) {
      return fail('bad-signature', 'the contentType attribute does not match the content');
    }
    signedData = toBuffer(si.signedAttrs.encodedValue);
  } else {
    signedData = content;
  }
  const pss =
    si.signatureAlgorithm.algorithmId === OID.rsassaPss
      ? pssParameters(si.signatureAlgorithm.algorithmParams)
      : undefined;
  const signature = toBuffer(si.signature.valueBlock.valueHexView);
  const ok = verifySignature(
    signedData,
    signature,
    si.signatureAlgorithm.algorithmId,
    digestName,
    certificate.publicKey,
    pss,
  );
  return ok
    ? { ...base, valid: true }
    : fail('bad-signature', 'the signature does not verify with the signer certificate');
}

interface SignedDataView {
  readonly eContentType: string;
  readonly eContent: asn1js.AsnType | undefined;
  readonly signerInfos: pkijs.SignerInfo[];
}

function readSignedData(content: asn1js.AsnType): SignedDataView {
  const fields = content instanceof asn1js.Sequence ? content.valueBlock.value : [];
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
  let eContent: asn1js.AsnType | undefined;
  if (wrapped) {
    if (wrapped.idBlock.tagClass !== 3 || wrapped.idBlock.tagNumber !== 0)
      throw new CmsError('malformed', 'eContent is not [0]');
    eContent = (wrapped as asn1js.Constructed).valueBlock.value?.[0];
  }
  try {
    return {
      eContentType: type.valueBlock.toString(),
      eContent,
      signerInfos: signerInfos.valueBlock.value.map((si) => new pkijs.SignerInfo({ schema: si })),
    };
  } catch (err) {
    throw new CmsError(
      'malformed',
      `SignerInfo: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** The certificates [0] of a SignedData, each with its exact encoding (other formats skipped). */
function embeddedCertificates(signedData: asn1js.AsnType): CertificateInfo[] {
  const fields = (signedData as asn1js.Sequence).valueBlock.value;
  const set = fields.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0) as
    | asn1js.Constructed
    | undefined;
  const out: CertificateInfo[] = [];
  for (const c of set?.valueBlock.value ?? []) {
    if (c instanceof asn1js.Sequence) out.push(loadCertificate(encodedBytes(c)));
  }
  return out;
}

export async function verifySignedData(
  der: Uint8Array,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const split = splitSignedData(der);
  const ci = parseContentInfo(split ? split.rest : der, opts.limits ?? DEFAULT_ASN1_LIMITS);
  if (ci.contentType !== OID.signedData)
    throw new CmsError('unsupported', `content type ${ci.contentType} is not SignedData`);
  // The SignedData is read by position rather than through pkijs's schema
  // matching, which parses every embedded certificate again (~5 ms a message).
  const sd = readSignedData(ci.content);
  const eContent = sd.eContent;
  if (opts.detachedContent && eContent) {
    // CVE-2018-18509 pattern: content inside and outside; which one was signed is ambiguous.
    throw new CmsError('malformed', 'a detached signature must not carry content of its own');
  }
  const content = opts.detachedContent ?? (eContent ? octetStringContent(eContent) : undefined);
  if (!content)
    throw new CmsError('malformed', 'SignedData without content and no detached content given');
  const certificates = split
    ? split.certificates.map((c) => loadCertificate(c))
    : embeddedCertificates(ci.content);
  const at = opts.at ?? new Date();
  const signers: SignerReport[] = [];
  for (const si of sd.signerInfos) {
    let report: SignerReport;
    try {
      const pool = opts.knownCertificates
        ? [...certificates, ...opts.knownCertificates]
        : certificates;
      report = checkSigner(si, content, sd.eContentType, pool);
    } catch (err) {
      if (!(err instanceof CmsError)) throw err;
      report = {
        valid: false,
        failure: { code: err.code, message: err.message },
        digestAlgorithm: si.digestAlgorithm.algorithmId,
        signatureAlgorithm: si.signatureAlgorithm.algorithmId,
        signatureTypes: [],
        signedAttributes: [],
        capabilities: [],
        copyableAttributes: [],
      };
    }
    if (report.valid && report.certificate && opts.validator) {
      report = {
        ...report,
        chain: await opts.validator.validate(report.certificate, certificates, at),
      };
    }
    signers.push(report);
  }
  return {
    contentType: sd.eContentType,
    content,
    detached: opts.detachedContent !== undefined,
    signers,
    certificates,
  };
}
