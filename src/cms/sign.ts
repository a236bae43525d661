/**
 * CMS SignedData (RFC 5652) for domain signatures (RFC 3183): the SignerInfo
 * carries contentType, signingTime (UTCTime), messageDigest, SMIMECapabilities,
 * signingCertificateV2 and the signature-type attribute, DER-sorted.
 */

import type { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import {
  algorithm,
  CmsError,
  cmsTime,
  derOf,
  derSetOf,
  encodedBytes,
  explicit,
  integer,
  integerFromBytes,
  octets,
  oid,
  raw,
  seq,
} from './asn1.js';
import type { CertificateInfo } from './certificate.js';
import { parseContentInfo } from './content-info.js';
import { OID } from './oids.js';
import { DIGEST_OID, type DigestName, digest, signatureScheme } from './signature-algorithms.js';

export interface SigningIdentity {
  readonly certificate: CertificateInfo;
  /** Intermediate certificates sent along (not the root). */
  readonly chain: readonly CertificateInfo[];
  readonly privateKey: KeyObject;
}

export interface SignOptions {
  /** Detached (multipart/signed) by default; false puts the content inside (opaque). */
  readonly detached?: boolean;
  /** RFC 3183 signature types; default domain signature. Empty: no attribute. */
  readonly signatureTypes?: readonly string[];
  readonly digest?: DigestName;
  readonly rsaPss?: boolean;
  readonly signingTime?: Date;
  /** Capability OIDs announced in SMIMECapabilities, most preferred first. */
  readonly capabilities?: readonly string[];
  /** Further signed attributes, as DER Attribute (e.g. security labels copied per RFC 3183). */
  readonly extraSignedAttributes?: readonly Buffer[];
  /** eContentType; id-data unless signing another CMS object. */
  readonly contentType?: string;
}

/** What we can decrypt, most preferred first (RFC 8551 2.7). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  OID.aes256Gcm,
  OID.aes128Gcm,
  OID.aes256Cbc,
  OID.aes192Cbc,
  OID.aes128Cbc,
];

export function attribute(type: string, ...values: asn1js.AsnType[]): Buffer {
  return derOf(seq(oid(type), new asn1js.Set({ value: values })));
}

export function issuerAndSerial(cert: CertificateInfo): asn1js.Sequence {
  return seq(raw(cert.issuerDer), integerFromBytes(cert.serial));
}

function capabilitiesValue(ids: readonly string[]): asn1js.Sequence {
  return seq(...ids.map((id) => seq(oid(id))));
}

function signingCertificateV2(cert: CertificateInfo): asn1js.Sequence {
  // ESSCertIDv2 with the default hash (SHA-256) omitted, as DER requires.
  const issuerSerial = seq(seq(explicit(4, raw(cert.issuerDer))), integerFromBytes(cert.serial));
  return seq(seq(seq(octets(digest('sha256', cert.der)), issuerSerial)));
}

/** Signed attributes, each as DER Attribute, before sorting. */
function signedAttributes(contentDigest: Buffer, id: SigningIdentity, opts: SignOptions): Buffer[] {
  const attrs = [
    attribute(OID.contentType, oid(opts.contentType ?? OID.data)),
    attribute(OID.signingTime, cmsTime(opts.signingTime ?? new Date())),
    attribute(OID.messageDigest, octets(contentDigest)),
    attribute(OID.smimeCapabilities, capabilitiesValue(opts.capabilities ?? DEFAULT_CAPABILITIES)),
    attribute(OID.signingCertificateV2, signingCertificateV2(id.certificate)),
  ];
  const types = opts.signatureTypes ?? [OID.domainSig];
  if (types.length > 0) attrs.push(attribute(OID.signatureType, ...types.map((t) => oid(t))));
  attrs.push(...(opts.extraSignedAttributes ?? []));
  return attrs;
}

/** One SignerInfo over `contentDigest`, as an asn1js element. */
export async function createSignerInfo(
  contentDigest: Buffer,
  id: SigningIdentity,
  opts: SignOptions,
  digestName: DigestName,
): Promise<asn1js.Sequence> {
  const scheme = signatureScheme(id.privateKey, {
    digest: digestName,
    rsaPss: opts.rsaPss ?? false,
  });
  const attrs = signedAttributes(contentDigest, id, opts);
  // The signature covers the DER SET OF the attributes; the SignerInfo carries the same set as [0].
  const set = derOf(derSetOf(attrs));
  const signature = await scheme.sign(set);
  const sortedAttrs = [...attrs].sort(Buffer.compare).map((a) => raw(a));
  return seq(
    integer(1),
    issuerAndSerial(id.certificate),
    algorithm(DIGEST_OID[scheme.digest]),
    explicit(0, ...sortedAttrs),
    raw(scheme.algorithmDer),
    octets(signature),
  );
}

/** The digest a SignerInfo made with this key will use. */
export function signerDigest(id: SigningIdentity, opts: SignOptions): DigestName {
  return signatureScheme(id.privateKey, {
    digest: opts.digest ?? 'sha256',
    rsaPss: opts.rsaPss ?? false,
  }).digest;
}

/** A complete ContentInfo(SignedData), DER. */
export async function createSignedData(
  content: Buffer,
  id: SigningIdentity,
  opts: SignOptions = {},
): Promise<Buffer> {
  const digestName = signerDigest(id, opts);
  const signerInfo = await createSignerInfo(digest(digestName, content), id, opts, digestName);
  const contentType = opts.contentType ?? OID.data;
  const encap =
    opts.detached === false
      ? seq(oid(contentType), explicit(0, octets(content)))
      : seq(oid(contentType));
  const certificates = [id.certificate, ...id.chain].map((c) => raw(c.der));
  const signedData = seq(
    // Version 1 for IssuerAndSerialNumber with id-data, 3 for other content types (RFC 5652 5.1).
    integer(contentType === OID.data ? 1 : 3),
    new asn1js.Set({ value: [algorithm(DIGEST_OID[digestName])] }),
    encap,
    new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: certificates }),
    new asn1js.Set({ value: [signerInfo] }),
  );
  return derOf(seq(oid(OID.signedData), explicit(0, signedData)));
}

/**
 * Adds our SignerInfo beside the existing ones of a detached SignedData
 * (RFC 3183 3.1.1 "parallel" domain signature). The existing signers, their
 * certificates and CRLs are kept byte for byte.
 */
export async function addParallelSigner(
  signedDataDer: Buffer,
  content: Buffer,
  id: SigningIdentity,
  opts: SignOptions = {},
): Promise<Buffer> {
  const ci = parseContentInfo(signedDataDer);
  if (ci.contentType !== OID.signedData) throw new CmsError('unsupported', 'not a SignedData');
  const fields = (ci.content as asn1js.Sequence).valueBlock.value;
  const [version, digestAlgs, encap] = fields;
  const rest = fields.slice(3);
  const certs = rest.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0) as
    | asn1js.Constructed
    | undefined;
  const crls = rest.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 1);
  const signerInfos = rest.at(-1);
  if (
    !(digestAlgs instanceof asn1js.Set) ||
    !(signerInfos instanceof asn1js.Set) ||
    !(version instanceof asn1js.Integer) ||
    !encap
  ) {
    throw new CmsError('malformed', 'SignedData structure');
  }
  const digestName = signerDigest(id, opts);
  const ours = await createSignerInfo(digest(digestName, content), id, opts, digestName);
  const algs = digestAlgs.valueBlock.value.map((a) => encodedBytes(a));
  const ourAlg = derOf(algorithm(DIGEST_OID[digestName]));
  if (!algs.some((a) => a.equals(ourAlg))) algs.push(ourAlg);
  const certList = [...(certs?.valueBlock.value.map((c) => encodedBytes(c)) ?? [])];
  for (const c of [id.certificate, ...id.chain])
    if (!certList.some((d) => d.equals(c.der))) certList.push(c.der);
  const body = [
    integer(Math.max(version.valueBlock.valueDec, 1)),
    derSetOf(algs),
    raw(encodedBytes(encap)),
    new asn1js.Constructed({
      idBlock: { tagClass: 3, tagNumber: 0 },
      value: certList.map((c) => raw(c)),
    }),
    ...(crls ? [raw(encodedBytes(crls))] : []),
    new asn1js.Set({
      value: [...signerInfos.valueBlock.value.map((s) => raw(encodedBytes(s))), ours],
    }),
  ];
  return derOf(seq(oid(OID.signedData), explicit(0, seq(...body))));
}
