/**
 * Domain encryption: EnvelopedData (AES-CBC) or AuthEnvelopedData (AES-GCM,
 * RFC 5083/5084; pkijs has none, so it is written here), one
 * RecipientInfo per recipient certificate: RSA-OAEP or PKCS#1 v1.5 key
 * transport for RSA keys, ephemeral-static ECDH for EC keys.
 */

import { constants, publicEncrypt } from 'node:crypto';
import type { Parts } from '../util/slices.js';
import { tlvList } from './asn1.js';
import type { CertificateInfo } from './certificate.js';
import {
  type ContentCipher,
  type Encrypted,
  encryptContent,
  encryptContentSliced,
  isAead,
  newContentKey,
} from './content-encryption.js';
import * as der from './der.js';
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

// RSAES-OAEP-params with SHA-256 and MGF1-SHA-256; pSourceFunc left at its default.
const OAEP_ALGORITHM = der.algorithm(
  OID.rsaesOaep,
  der.seq(
    der.context(0, der.algorithm(OID.sha256)),
    der.context(1, der.algorithm(OID.mgf1, der.algorithm(OID.sha256))),
  ),
);
const PKCS1_ALGORITHM = der.algorithm(OID.rsaEncryption, der.nullValue());

function keyTransRecipient(r: Recipient, contentKey: Buffer): Buffer {
  const oaep = (r.keyTransport ?? 'rsa-oaep') === 'rsa-oaep';
  const key = r.certificate.publicKey;
  const encryptedKey = publicEncrypt(
    oaep
      ? { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }
      : { key, padding: constants.RSA_PKCS1_PADDING },
    contentKey,
  );
  return der.seq(
    der.int(0),
    issuerAndSerial(r.certificate),
    oaep ? OAEP_ALGORITHM : PKCS1_ALGORITHM,
    der.octets(encryptedKey),
  );
}

function keyAgreeRecipient(r: Recipient, contentKey: Buffer): Buffer {
  const a = agreeAndWrap(r.certificate.publicKey, contentKey);
  // originator [0] EXPLICIT OriginatorIdentifierOrKey, here originatorKey [1] IMPLICIT OriginatorPublicKey.
  const originatorKey = der.context(
    1,
    der.algorithm(OID.ecPublicKey),
    der.bitString(a.ephemeralPoint),
  );
  // RecipientInfo CHOICE: kari [1] IMPLICIT KeyAgreeRecipientInfo.
  return der.context(
    1,
    der.int(3),
    der.context(0, originatorKey),
    der.algorithm(a.schemeOid, der.algorithm(a.wrapOid)),
    der.seq(der.seq(issuerAndSerial(r.certificate), der.octets(a.wrappedKey))),
  );
}

function recipientInfo(r: Recipient, contentKey: Buffer): Buffer {
  return r.certificate.publicKey.asymmetricKeyType === 'ec'
    ? keyAgreeRecipient(r, contentKey)
    : keyTransRecipient(r, contentKey);
}

/** EncryptedContentInfo as DER pieces: the ciphertext is carried, not copied. */
function encryptedContentInfo(contentType: string, alg: Buffer, ciphertext: Buffer[]): Buffer[] {
  // encryptedContent is [0] IMPLICIT OCTET STRING: primitive context tag 0x80.
  return tlvList(0x30, [der.oid(contentType), alg, ...tlvList(0x80, ciphertext)]);
}

/** ContentInfo(EnvelopedData | AuthEnvelopedData), DER. */
export function createEnvelope(
  content: Buffer,
  recipients: readonly Recipient[],
  opts: EnvelopeOptions = {},
): Buffer {
  return Buffer.concat(createEnvelopeParts(content, recipients, opts));
}

/** The same DER as a list of buffers (the ciphertext not copied), for large messages. */
export function createEnvelopeParts(
  content: Buffer,
  recipients: readonly Recipient[],
  opts: EnvelopeOptions = {},
): Buffer[] {
  const cipher = opts.cipher ?? 'aes-256-cbc';
  const contentKey = newContentKey(cipher);
  const infos = recipientInfos(recipients, contentKey);
  return envelopeParts(infos, recipients, encryptContent(cipher, contentKey, content), opts);
}

/**
 * createEnvelopeParts over content in parts, encrypted a slice per turn of
 * the event loop when large (a 25 MB message would otherwise stall every
 * other connection for the whole encryption).
 */
export async function createEnvelopePartsSliced(
  content: Parts,
  recipients: readonly Recipient[],
  opts: EnvelopeOptions = {},
): Promise<Buffer[]> {
  const cipher = opts.cipher ?? 'aes-256-cbc';
  const contentKey = newContentKey(cipher);
  const infos = recipientInfos(recipients, contentKey);
  const encrypted = await encryptContentSliced(cipher, contentKey, content);
  return envelopeParts(infos, recipients, encrypted, opts);
}

function recipientInfos(recipients: readonly Recipient[], contentKey: Buffer): Buffer {
  if (recipients.length === 0) throw new Error('createEnvelope needs at least one recipient');
  return der.set(...recipients.map((r) => recipientInfo(r, contentKey)));
}

function envelopeParts(
  infos: Buffer,
  recipients: readonly Recipient[],
  encrypted: Encrypted,
  opts: EnvelopeOptions,
): Buffer[] {
  const cipher = opts.cipher ?? 'aes-256-cbc';
  const eci = encryptedContentInfo(
    opts.contentType ?? OID.data,
    encrypted.algorithm,
    encrypted.ciphertext,
  );
  const hasKari = recipients.some((r) => r.certificate.publicKey.asymmetricKeyType === 'ec');
  const [type, body] = isAead(cipher)
    ? [
        OID.authEnvelopedData,
        tlvList(0x30, [der.int(0), infos, ...eci, der.octets(encrypted.tag!)]),
      ]
    : // Version 0 with only key transport; 2 once a kari is present (RFC 5652 6.1).
      [OID.envelopedData, tlvList(0x30, [der.int(hasKari ? 2 : 0), infos, ...eci])];
  return tlvList(0x30, [der.oid(type), ...tlvList(0xa0, body)]);
}
