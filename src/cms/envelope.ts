/**
 * Domain encryption: EnvelopedData (AES-CBC) or AuthEnvelopedData (AES-GCM,
 * RFC 5083/5084; pkijs has none, so it is built here with asn1js), one
 * RecipientInfo per recipient certificate: RSA-OAEP or PKCS#1 v1.5 key
 * transport for RSA keys, ephemeral-static ECDH for EC keys.
 */

import { constants, publicEncrypt } from 'node:crypto';
import * as asn1js from 'asn1js';
import { algorithm, derOf, explicit, integer, nullValue, octets, oid, seq } from './asn1.js';
import type { CertificateInfo } from './certificate.js';
import { type ContentCipher, encryptContent, isAead, newContentKey } from './content-encryption.js';
import { agreeAndWrap } from './key-agreement.js';
import { OID } from './oids.js';
import { issuerAndSerial } from './sign.js';

export type KeyTransport = 'rsa-oaep' | 'rsa-pkcs1';

export interface Recipient {
  readonly certificate: CertificateInfo;
  /** RSA keys: OAEP (SHA-256) by default; PKCS#1 v1.5 for partners of unknown capabilities. */
  readonly keyTransport?: KeyTransport;
}

export interface EnvelopeOptions {
  /** CBC gives EnvelopedData, GCM gives AuthEnvelopedData. Default aes-256-cbc. */
  readonly cipher?: ContentCipher;
  /** Inner content type (id-data, or signedData for sign-then-encrypt of CMS). */
  readonly contentType?: string;
}

function oaepParameters(): asn1js.Sequence {
  // RSAES-OAEP-params with SHA-256 and MGF1-SHA-256; pSourceFunc left at its default.
  return seq(
    explicit(0, algorithm(OID.sha256)),
    explicit(1, algorithm(OID.mgf1, algorithm(OID.sha256))),
  );
}

function keyTransRecipient(r: Recipient, contentKey: Buffer): asn1js.Sequence {
  const oaep = (r.keyTransport ?? 'rsa-oaep') === 'rsa-oaep';
  const encryptedKey = publicEncrypt(
    oaep
      ? {
          key: r.certificate.publicKey,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: 'sha256',
        }
      : { key: r.certificate.publicKey, padding: constants.RSA_PKCS1_PADDING },
    contentKey,
  );
  const kea = oaep
    ? algorithm(OID.rsaesOaep, oaepParameters())
    : algorithm(OID.rsaEncryption, nullValue());
  return seq(integer(0), issuerAndSerial(r.certificate), kea, octets(encryptedKey));
}

function keyAgreeRecipient(r: Recipient, contentKey: Buffer): asn1js.Constructed {
  const a = agreeAndWrap(r.certificate.publicKey, contentKey);
  const originatorKey = new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 1 },
    value: [algorithm(OID.ecPublicKey), new asn1js.BitString({ valueHex: a.ephemeralPoint })],
  });
  const kari = [
    integer(3),
    explicit(0, originatorKey),
    algorithm(a.schemeOid, algorithm(a.wrapOid)),
    seq(seq(issuerAndSerial(r.certificate), octets(a.wrappedKey))),
  ];
  // RecipientInfo CHOICE: kari [1] IMPLICIT KeyAgreeRecipientInfo.
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: kari });
}

function recipientInfo(r: Recipient, contentKey: Buffer): asn1js.AsnType {
  const type = r.certificate.publicKey.asymmetricKeyType;
  if (type === 'ec') return keyAgreeRecipient(r, contentKey);
  return keyTransRecipient(r, contentKey);
}

function encryptedContentInfo(
  contentType: string,
  alg: asn1js.Sequence,
  ciphertext: Buffer,
): asn1js.Sequence {
  const body = new asn1js.Primitive({
    idBlock: { tagClass: 3, tagNumber: 0 },
    valueHex: ciphertext,
  });
  return seq(oid(contentType), alg, body);
}

/** ContentInfo(EnvelopedData | AuthEnvelopedData), DER. */
export function createEnvelope(
  content: Buffer,
  recipients: readonly Recipient[],
  opts: EnvelopeOptions = {},
): Buffer {
  if (recipients.length === 0) throw new Error('createEnvelope needs at least one recipient');
  const cipher = opts.cipher ?? 'aes-256-cbc';
  const contentKey = newContentKey(cipher);
  const infos = new asn1js.Set({ value: recipients.map((r) => recipientInfo(r, contentKey)) });
  const encrypted = encryptContent(cipher, contentKey, content);
  const eci = encryptedContentInfo(
    opts.contentType ?? OID.data,
    encrypted.algorithm,
    encrypted.ciphertext,
  );
  const hasKari = recipients.some((r) => r.certificate.publicKey.asymmetricKeyType === 'ec');
  if (isAead(cipher)) {
    const auth = seq(integer(0), infos, eci, octets(encrypted.tag!));
    return derOf(seq(oid(OID.authEnvelopedData), explicit(0, auth)));
  }
  // Version 0 with only key transport; 2 once a kari is present (RFC 5652 6.1).
  const env = seq(integer(hasKari ? 2 : 0), infos, eci);
  return derOf(seq(oid(OID.envelopedData), explicit(0, env)));
}
