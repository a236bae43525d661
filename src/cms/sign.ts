/**
 * CMS SignedData (RFC 5652) for domain signatures (RFC 3183): the SignerInfo
 * carries contentType, signingTime (UTCTime), messageDigest, SMIMECapabilities,
 * signingCertificateV2 and the signature-type attribute, DER-sorted.
 */

import type { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { concatSliced, type Parts } from '../util/slices.js';
import { CmsError, encodedBytes, tlvList } from './asn1.js';
import type { CertificateInfo } from './certificate.js';
import { parseContentInfo } from './content-info.js';
import * as der from './der.js';
import { OID } from './oids.js';
import {
  DIGEST_OID,
  type DigestName,
  digest,
  digestSliced,
  signatureScheme,
} from './signature-algorithms.js';

export interface SigningIdentity {
  readonly certificate: CertificateInfo;
  /** Intermediate certificates sent along (not the root). */
  readonly chain: readonly CertificateInfo[];
  readonly privateKey: KeyObject;
  /** Sent along for partners to harvest: our domain encryption certificate(s). */
  readonly extraCertificates?: readonly CertificateInfo[];
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

/** Attribute ::= SEQUENCE { attrType, attrValues SET OF value }, DER. */
export function attribute(type: string, ...values: Buffer[]): Buffer {
  return der.seq(der.oid(type), der.setOf(values));
}

export function issuerAndSerial(cert: CertificateInfo): Buffer {
  return der.seq(cert.issuerDer, der.intBytes(cert.serial));
}

/**
 * Attributes that are the same for every message of a signer (content type,
 * capabilities, signing certificate, signature type), encoded once: per
 * message only signingTime and messageDigest are new.
 */
const constantAttributes = new Map<string, Buffer>();

function constantAttribute(key: string, build: () => Buffer): Buffer {
  let v = constantAttributes.get(key);
  if (!v) {
    v = build();
    // Bounded: keys come from our configuration (OIDs, our certificates), but stay safe.
    if (constantAttributes.size >= 1000) constantAttributes.clear();
    constantAttributes.set(key, v);
  }
  return v;
}

function signingCertificateV2(cert: CertificateInfo): Buffer {
  // ESSCertIDv2 with the default hash (SHA-256) omitted, as DER requires.
  const issuerSerial = der.seq(der.seq(der.context(4, cert.issuerDer)), der.intBytes(cert.serial));
  return der.seq(der.seq(der.seq(der.octets(digest('sha256', cert.der)), issuerSerial)));
}

const certificateKeys = new WeakMap<CertificateInfo, string>();
let certificateCount = 0;

/** A short cache key per certificate object (its DER would be a costly key). */
function certificateKey(cert: CertificateInfo): string {
  let k = certificateKeys.get(cert);
  if (!k) {
    k = `c${certificateCount++}`;
    certificateKeys.set(cert, k);
  }
  return k;
}

/** Signed attributes, each as DER Attribute, before sorting. */
function signedAttributes(contentDigest: Buffer, id: SigningIdentity, opts: SignOptions): Buffer[] {
  const contentType = opts.contentType ?? OID.data;
  const capabilities = opts.capabilities ?? DEFAULT_CAPABILITIES;
  const types = opts.signatureTypes ?? [OID.domainSig];
  const attrs = [
    constantAttribute(`ct ${contentType}`, () => attribute(OID.contentType, der.oid(contentType))),
    attribute(OID.signingTime, der.time(opts.signingTime ?? new Date())),
    attribute(OID.messageDigest, der.octets(contentDigest)),
    constantAttribute(`caps ${capabilities.join(',')}`, () =>
      attribute(OID.smimeCapabilities, der.seq(...capabilities.map((c) => der.seq(der.oid(c))))),
    ),
    constantAttribute(`scv2 ${certificateKey(id.certificate)}`, () =>
      attribute(OID.signingCertificateV2, signingCertificateV2(id.certificate)),
    ),
  ];
  if (types.length > 0) {
    attrs.push(
      constantAttribute(`st ${types.join(',')}`, () =>
        attribute(OID.signatureType, ...types.map((t) => der.oid(t))),
      ),
    );
  }
  attrs.push(...(opts.extraSignedAttributes ?? []));
  return attrs;
}

/** One SignerInfo over `contentDigest`, DER. */
export async function createSignerInfo(
  contentDigest: Buffer,
  id: SigningIdentity,
  opts: SignOptions,
  digestName: DigestName,
): Promise<Buffer> {
  const scheme = signatureScheme(id.privateKey, {
    digest: digestName,
    rsaPss: opts.rsaPss ?? false,
  });
  const attrs = signedAttributes(contentDigest, id, opts).sort(Buffer.compare);
  // The signature covers the DER SET OF the attributes; the SignerInfo carries the same set as [0].
  const signature = await scheme.sign(der.set(...attrs));
  return der.seq(
    der.int(1),
    issuerAndSerial(id.certificate),
    der.algorithm(DIGEST_OID[scheme.digest]),
    der.context(0, ...attrs),
    scheme.algorithmDer,
    der.octets(signature),
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
  content: Parts,
  id: SigningIdentity,
  opts: SignOptions = {},
): Promise<Buffer> {
  const digestName = signerDigest(id, opts);
  const contentDigest = await digestSliced(digestName, content);
  const signerInfo = await createSignerInfo(contentDigest, id, opts, digestName);
  const contentType = opts.contentType ?? OID.data;
  // The content (possibly 25 MB, opaque signing) is carried as a list, copied once at the end.
  const contentParts = Buffer.isBuffer(content) ? [content] : [...content];
  const encap =
    opts.detached === false
      ? tlvList(0x30, [der.oid(contentType), ...tlvList(0xa0, tlvList(0x04, contentParts))])
      : [der.seq(der.oid(contentType))];
  const body = tlvList(0x30, [
    // Version 1 for IssuerAndSerialNumber with id-data, 3 for other content types (RFC 5652 5.1).
    der.int(contentType === OID.data ? 1 : 3),
    der.set(der.algorithm(DIGEST_OID[digestName])),
    ...encap,
    der.context(
      0,
      ...[id.certificate, ...id.chain, ...(id.extraCertificates ?? [])].map((c) => c.der),
    ),
    der.set(signerInfo),
  ]);
  return concatSliced(tlvList(0x30, [der.oid(OID.signedData), ...tlvList(0xa0, body)]));
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
  const ourAlg = der.algorithm(DIGEST_OID[digestName]);
  if (!algs.some((a) => a.equals(ourAlg))) algs.push(ourAlg);
  const certList = [...(certs?.valueBlock.value.map((c) => encodedBytes(c)) ?? [])];
  for (const c of [id.certificate, ...id.chain])
    if (!certList.some((d) => d.equals(c.der))) certList.push(c.der);
  const body = der.seq(
    der.int(Math.max(version.valueBlock.valueDec, 1)),
    der.setOf(algs),
    encodedBytes(encap),
    der.context(0, ...certList),
    ...(crls ? [encodedBytes(crls)] : []),
    der.set(...signerInfos.valueBlock.value.map((s) => encodedBytes(s)), ours),
  );
  return der.seq(der.oid(OID.signedData), der.context(0, body));
}
