/**
 * Certificates as the CMS code needs them: the exact DER, issuer and serial
 * bytes for IssuerAndSerialNumber, the subject key identifier, the public key
 * as a Node KeyObject and the e-mail/DNS names. Parsed once, reused per message.
 */

import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CmsError, encodedBytes, parseBer, toBuffer } from './asn1.js';
import type { CertificateId } from './der-fields.js';
import { OID } from './oids.js';

export interface CertificateInfo {
  readonly der: Buffer;
  readonly pkijs: pkijs.Certificate;
  readonly x509: X509Certificate;
  readonly publicKey: KeyObject;
  /** DER of the issuer Name exactly as in the certificate. */
  readonly issuerDer: Buffer;
  /** DER of the subject Name exactly as in the certificate. */
  readonly subjectDer: Buffer;
  /** Content octets of the serial number INTEGER. */
  readonly serial: Buffer;
  readonly subjectKeyId: Buffer | undefined;
  readonly rfc822Names: readonly string[];
  readonly dnsNames: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprint: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** All PEM blocks with the given label (e.g. CERTIFICATE), decoded. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] === label) out.push(Buffer.from(m[2]!.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'));
  }
  return out;
}

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The rfc822Name and dNSName entries of the subjectAltName extension, read
 * from the extension's structure. Not from X509Certificate.subjectAltName:
 * that is a display string, in which a name holding ", DNS:" would read as
 * a second entry.
 */
function subjectAltNames(cert: pkijs.Certificate): { email: string[]; dns: string[] } {
  const email: string[] = [];
  const dns: string[] = [];
  const ext = cert.extensions?.find((e) => e.extnID === OID.subjectAltName);
  const names = ext?.parsedValue instanceof pkijs.AltName ? ext.parsedValue.altNames : [];
  for (const n of names) {
    if (typeof n.value !== 'string') continue;
    if (n.type === 1) email.push(n.value.toLowerCase());
    else if (n.type === 2) dns.push(n.value.toLowerCase());
  }
  return { email, dns };
}

/**
 * Parsed certificates by SHA-256 of their DER: every signed message carries
 * the same few partner certificates, and parsing one (pkijs + X509Certificate)
 * costs far more than hashing it. Bounded; the oldest entry goes first.
 */
const parsed = new Map<string, CertificateInfo>();
const PARSED_MAX = 2000;

export function loadCertificate(der: Buffer): CertificateInfo {
  const fingerprint = createHash('sha256').update(der).digest('hex');
  const known = parsed.get(fingerprint);
  if (known) return known;
  const info = parseCertificate(der, fingerprint);
  if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value as string);
  parsed.set(fingerprint, info);
  return info;
}

function parseCertificate(input: Buffer, fingerprint: string): CertificateInfo {
  // A copy: the input may be a view into a whole message that must not stay alive with the cache.
  const der = Buffer.from(input);
  const asn = parseBer(der, 'certificate');
  try {
    return describeCertificate(der, asn, fingerprint);
  } catch (err) {
    // X509Certificate decodes parts lazily (the public key, the names): a
    // broken field surfaces only when read, as a plain Error from OpenSSL.
    throw new CmsError(
      'malformed',
      `certificate: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

function describeCertificate(
  der: Buffer,
  asn: asn1js.AsnType,
  fingerprint: string,
): CertificateInfo {
  const cert = new pkijs.Certificate({ schema: asn });
  const x509 = new X509Certificate(der);
  const tbs = (asn as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence;
  // tbsCertificate: [0] version?, serial, signature, issuer, validity, subject, ...
  const fields = tbs.valueBlock.value;
  const offset = fields[0]?.idBlock.tagClass === 3 ? 1 : 0;
  const ski = cert.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier);
  const skiValue = ski?.parsedValue as asn1js.OctetString | undefined;
  const names = subjectAltNames(cert);
  return {
    der,
    pkijs: cert,
    x509,
    publicKey: x509.publicKey,
    issuerDer: encodedBytes(fields[offset + 2]!),
    subjectDer: encodedBytes(fields[offset + 4]!),
    serial: toBuffer(cert.serialNumber.valueBlock.valueHexView),
    subjectKeyId: skiValue ? toBuffer(skiValue.valueBlock.valueHexView) : undefined,
    rfc822Names: names.email,
    dnsNames: names.dns,
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    fingerprint,
  };
}

/** Every certificate in a PEM text, in order. */
export function loadCertificatesPem(text: string): CertificateInfo[] {
  return pemBlocks(text, 'CERTIFICATE').map(loadCertificate);
}

/** The issuer as "CN=..., O=..." for reports. */
export function describeName(cert: CertificateInfo, which: 'issuer' | 'subject'): string {
  return (which === 'issuer' ? cert.x509.issuer : cert.x509.subject)
    .split('\n')
    .reverse()
    .join(', ');
}

/**
 * Whether `id` (a RecipientInfo's or SignerInfo's certificate identifier)
 * names `cert`: the same key identifier, or the same serial and issuer. The
 * issuer is compared as sent; with `byName`, a differently encoded but equal
 * name (string types, case) also counts, as pkijs compares names.
 */
export function identifies(id: CertificateId, cert: CertificateInfo, byName = true): boolean {
  if ('subjectKeyId' in id) return cert.subjectKeyId?.equals(id.subjectKeyId) ?? false;
  if (!id.serial.equals(cert.serial)) return false;
  if (id.issuer.equals(cert.issuerDer)) return true;
  if (!byName) return false;
  try {
    const name = new pkijs.RelativeDistinguishedNames({
      schema: parseBer(id.issuer, 'certificate issuer name'),
    });
    return cert.pkijs.issuer.isEqual(name);
  } catch {
    return false;
  }
}
