/**
 * Certificate issuance for development and tests: a domain CA plus a domain
 * signing and a domain encryption certificate with the RFC 3183 naming
 * convention. pkijs builds the structures; node:crypto signs.
 */

import { createHash, generateKeyPair, type KeyObject, randomBytes, sign } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { algorithm, derOf, nullValue, octets, oid, parseBer, seq } from '../cms/asn1.js';
import { type CertificateInfo, loadCertificate, toPem } from '../cms/certificate.js';
import { OID } from '../cms/oids.js';

export type KeyAlgorithm = 'rsa-2048' | 'rsa-3072' | 'ec-p256' | 'ed25519';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = [
  'rsa-2048',
  'rsa-3072',
  'ec-p256',
  'ed25519',
];

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign';
const KEY_USAGE_BIT: Readonly<Record<KeyUsageName, number>> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
};

export interface Issuer {
  readonly certificate: CertificateInfo;
  readonly privateKey: KeyObject;
}

export interface CertificateRequest {
  readonly commonName: string;
  readonly organization?: string;
  readonly publicKey: KeyObject;
  /** Self-signed when absent (the key signing is then `selfKey`). */
  readonly issuer?: Issuer;
  readonly selfKey?: KeyObject;
  readonly ca?: boolean;
  readonly rfc822Names?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly keyUsage: readonly KeyUsageName[];
  readonly emailProtection?: boolean;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly crlUrl?: string;
  readonly ocspUrl?: string;
}

export function generateKey(
  algo: KeyAlgorithm,
): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) =>
      err ? reject(err) : resolve({ publicKey, privateKey });
    if (algo === 'ec-p256') generateKeyPair('ec', { namedCurve: 'prime256v1' }, done);
    else if (algo === 'ed25519') generateKeyPair('ed25519', {}, done);
    else generateKeyPair('rsa', { modulusLength: algo === 'rsa-3072' ? 3072 : 2048 }, done);
  });
}

/** A Name with one attribute per RDN (O, then CN). */
function name(cn: string, o?: string): pkijs.RelativeDistinguishedNames {
  const rdn = (type: string, value: string) =>
    new asn1js.Set({ value: [seq(oid(type), new asn1js.Utf8String({ value }))] });
  const rdns = o ? [rdn('2.5.4.10', o), rdn('2.5.4.3', cn)] : [rdn('2.5.4.3', cn)];
  return new pkijs.RelativeDistinguishedNames({ schema: parseBer(derOf(seq(...rdns)), 'name') });
}

function extension(extnID: string, critical: boolean, value: asn1js.AsnType): pkijs.Extension {
  const der = derOf(value);
  return new pkijs.Extension({
    extnID,
    critical,
    extnValue: der.buffer.slice(der.byteOffset, der.byteOffset + der.length) as ArrayBuffer,
  });
}

function keyUsageBits(usages: readonly KeyUsageName[]): asn1js.BitString {
  let bits = 0;
  for (const u of usages) bits |= 0x8000 >> KEY_USAGE_BIT[u];
  const bytes = Buffer.from([bits >> 8, bits & 0xff]);
  const used = bytes[1] === 0 ? 1 : 2;
  let unused = 0;
  while (unused < 7 && ((bytes[used - 1]! >> unused) & 1) === 0) unused++;
  return new asn1js.BitString({ valueHex: bytes.subarray(0, used), unusedBits: unused });
}

function signatureAlgorithmFor(key: KeyObject): { alg: asn1js.Sequence; digest: string | null } {
  if (key.asymmetricKeyType === 'ed25519') return { alg: algorithm(OID.ed25519), digest: null };
  if (key.asymmetricKeyType === 'ec')
    return { alg: algorithm(OID.ecdsaWithSha256), digest: 'sha256' };
  return { alg: algorithm(OID.sha256WithRSAEncryption, nullValue()), digest: 'sha256' };
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function subjectKeyId(publicKeyBits: Buffer): Buffer {
  return createHash('sha1').update(publicKeyBits).digest();
}

export async function issueCertificate(req: CertificateRequest): Promise<CertificateInfo> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x10; // positive, no leading zero
  cert.serialNumber = new asn1js.Integer({ valueHex: serial });
  const subject = name(req.commonName, req.organization);
  cert.subject = subject;
  cert.issuer = req.issuer ? req.issuer.certificate.pkijs.subject : subject;
  cert.notBefore.value = req.notBefore ?? new Date(Date.now() - 60_000);
  cert.notAfter.value = req.notAfter ?? new Date(Date.now() + 365 * 86_400_000);
  const spki = req.publicKey.export({ format: 'der', type: 'spki' });
  cert.subjectPublicKeyInfo = new pkijs.PublicKeyInfo({ schema: parseBer(spki, 'public key') });
  const spkiBits = (parseBer(spki, 'public key') as asn1js.Sequence).valueBlock
    .value[1] as asn1js.BitString;
  const ski = subjectKeyId(Buffer.from(spkiBits.valueBlock.valueHexView));
  const exts = [
    extension('2.5.29.19', true, req.ca ? seq(new asn1js.Boolean({ value: true })) : seq()),
    extension('2.5.29.15', true, keyUsageBits(req.keyUsage)),
    extension(OID.subjectKeyIdentifier, false, octets(ski)),
  ];
  if (req.issuer?.certificate.subjectKeyId) {
    const aki = seq(
      new asn1js.Primitive({
        idBlock: { tagClass: 3, tagNumber: 0 },
        valueHex: req.issuer.certificate.subjectKeyId,
      }),
    );
    exts.push(extension('2.5.29.35', false, aki));
  }
  const san = [
    ...(req.rfc822Names ?? []).map(
      (v) =>
        new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 1 }, valueHex: Buffer.from(v) }),
    ),
    ...(req.dnsNames ?? []).map(
      (v) =>
        new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 }, valueHex: Buffer.from(v) }),
    ),
  ];
  if (san.length > 0) exts.push(extension(OID.subjectAltName, false, seq(...san)));
  if (req.emailProtection) exts.push(extension('2.5.29.37', false, seq(oid(OID.emailProtection))));
  if (req.crlUrl) {
    const uri = new asn1js.Primitive({
      idBlock: { tagClass: 3, tagNumber: 6 },
      valueHex: Buffer.from(req.crlUrl),
    });
    const dp = seq(
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [uri] })],
      }),
    );
    exts.push(extension('2.5.29.31', false, seq(dp)));
  }
  if (req.ocspUrl) {
    const uri = new asn1js.Primitive({
      idBlock: { tagClass: 3, tagNumber: 6 },
      valueHex: Buffer.from(req.ocspUrl),
    });
    exts.push(extension('1.3.6.1.5.5.7.1.1', false, seq(seq(oid('1.3.6.1.5.5.7.48.1'), uri))));
  }
  cert.extensions = exts;
  const signingKey = req.issuer?.privateKey ?? req.selfKey;
  if (!signingKey) throw new Error('a self-signed certificate needs selfKey');
  const { alg, digest } = signatureAlgorithmFor(signingKey);
  cert.signature = new pkijs.AlgorithmIdentifier({ schema: alg });
  cert.signatureAlgorithm = new pkijs.AlgorithmIdentifier({ schema: alg });
  const tbs = Buffer.from(cert.encodeTBS().toBER(false));
  cert.tbsView = new Uint8Array(tbs);
  cert.signatureValue = new asn1js.BitString({ valueHex: sign(digest, tbs, signingKey) });
  return loadCertificate(Buffer.from(cert.toSchema(false).toBER(false)));
}

export interface IssuedKey {
  readonly certificate: CertificateInfo;
  readonly privateKey: KeyObject;
}

export interface DomainPki {
  readonly ca: IssuedKey;
  readonly signing: IssuedKey;
  readonly encryption: IssuedKey;
}

export interface DomainPkiOptions {
  readonly algo?: KeyAlgorithm;
  readonly crlUrl?: string;
  readonly ocspUrl?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

/** A domain CA with a signing and an encryption certificate (RFC 3183 naming). */
export async function generateDomainPki(
  domain: string,
  opts: DomainPkiOptions = {},
): Promise<DomainPki> {
  const algo = opts.algo ?? 'rsa-2048';
  const [caKey, signKey, encKey] = await Promise.all([
    generateKey(algo === 'ed25519' ? 'ec-p256' : algo),
    generateKey(algo),
    // Ed25519 cannot encrypt: the encryption key is EC P-256 then (key agreement).
    generateKey(algo === 'ed25519' ? 'ec-p256' : algo),
  ]);
  const ca = await issueCertificate({
    commonName: `${domain} domain CA`,
    organization: domain,
    publicKey: caKey.publicKey,
    selfKey: caKey.privateKey,
    ca: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    notAfter: new Date(Date.now() + 5 * 365 * 86_400_000),
  });
  const issuer = { certificate: ca, privateKey: caKey.privateKey };
  const common = {
    organization: domain,
    issuer,
    dnsNames: [domain],
    emailProtection: true,
    ...(opts.crlUrl ? { crlUrl: opts.crlUrl } : {}),
    ...(opts.ocspUrl ? { ocspUrl: opts.ocspUrl } : {}),
    ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
    ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
  };
  const signing = await issueCertificate({
    ...common,
    commonName: `${domain} domain signing`,
    publicKey: signKey.publicKey,
    rfc822Names: [`domain-signing-authority@${domain}`],
    keyUsage: ['digitalSignature', 'nonRepudiation'],
  });
  const encIsEc = encKey.publicKey.asymmetricKeyType === 'ec';
  const encryption = await issueCertificate({
    ...common,
    commonName: `${domain} domain confidentiality`,
    publicKey: encKey.publicKey,
    rfc822Names: [`domain-confidentiality-authority@${domain}`],
    keyUsage: [encIsEc ? 'keyAgreement' : 'keyEncipherment'],
  });
  return {
    ca: { certificate: ca, privateKey: caKey.privateKey },
    signing: { certificate: signing, privateKey: signKey.privateKey },
    encryption: { certificate: encryption, privateKey: encKey.privateKey },
  };
}

export function keyPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function certificatePem(c: CertificateInfo): string {
  return toPem(c.der);
}
