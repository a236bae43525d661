/**
 * Decryption of EnvelopedData and AuthEnvelopedData with the keys we hold:
 * RSA-OAEP and PKCS#1 v1.5 key transport (implicit rejection), ECDH key
 * agreement; AES-CBC, AES-GCM and ChaCha20-Poly1305 content.
 */

import {
  constants,
  createPublicKey,
  type KeyObject,
  privateDecrypt,
  randomBytes,
} from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import {
  type Asn1Limits,
  algorithm,
  CmsError,
  DEFAULT_ASN1_LIMITS,
  derOf,
  encodedBytes,
  oid,
  parseBer,
  seq,
  toBuffer,
} from './asn1.js';
import { type CertificateInfo, identifies } from './certificate.js';
import { cipherKeyLength, decryptContent } from './content-encryption.js';
import { octetStringContent, parseContentInfo } from './content-info.js';
import {
  type KeyTransportEnvelope,
  MAX_RECIPIENT_INFOS,
  readKeyTransportEnvelope,
} from './envelope-reader.js';
import { agreeAndUnwrap } from './key-agreement.js';
import { OID } from './oids.js';
import { decryptPkcs1KeyTransport } from './rsa-pkcs1.js';
import { digestByOid } from './signature-algorithms.js';

export interface DecryptionKey {
  readonly certificate: CertificateInfo;
  readonly privateKey: KeyObject;
}

export interface DecryptResult {
  readonly contentType: string;
  readonly content: Buffer;
  /** AuthEnvelopedData: integrity protected by the AEAD tag. */
  readonly authenticated: boolean;
  readonly contentEncryption: string;
  readonly keyEncryption: string;
  /** The certificate of ours the message was encrypted to. */
  readonly recipient: CertificateInfo;
}

interface Envelope {
  readonly authenticated: boolean;
  /** The first ones, up to MAX_RECIPIENT_INFOS recipients (recipientsIn). */
  readonly recipientInfos: pkijs.RecipientInfo[];
  readonly moreRecipients: boolean;
  readonly contentType: string;
  readonly algorithm: pkijs.AlgorithmIdentifier;
  readonly ciphertext: Buffer;
  readonly tag?: Buffer;
  readonly aad?: Buffer;
}

function fail(message: string): never {
  throw new CmsError('malformed', message);
}

/**
 * Recipients a RecipientInfo names: a KeyAgreeRecipientInfo ([1]) one per
 * RecipientEncryptedKey (its last field), any other one.
 */
function recipientsIn(ri: asn1js.AsnType): number {
  if (ri.idBlock.tagClass !== 3 || ri.idBlock.tagNumber !== 1) return 1;
  const keys = (ri as asn1js.Constructed).valueBlock.value?.at(-1);
  return keys instanceof asn1js.Sequence ? Math.max(1, keys.valueBlock.value.length) : 1;
}

function readEnvelope(type: string, content: asn1js.AsnType): Envelope {
  if (!(content instanceof asn1js.Sequence)) fail('enveloped content is not a SEQUENCE');
  const fields = content.valueBlock.value;
  let i = 1; // after version
  if (fields[i]?.idBlock.tagClass === 3 && fields[i]?.idBlock.tagNumber === 0) i++; // originatorInfo
  const infos = fields[i++];
  const eci = fields[i++];
  if (!(infos instanceof asn1js.Set) || !(eci instanceof asn1js.Sequence))
    fail('enveloped data structure');
  const [ct, alg, body] = eci.valueBlock.value;
  if (!(ct instanceof asn1js.ObjectIdentifier) || !alg) fail('EncryptedContentInfo structure');
  if (!body) fail('EncryptedContentInfo without content (detached ciphertext is not supported)');
  // Counted before pkijs reads them: its schema matching is the cost.
  const recipientInfos: pkijs.RecipientInfo[] = [];
  let budget = MAX_RECIPIENT_INFOS;
  for (const r of infos.valueBlock.value) {
    budget -= recipientsIn(r);
    if (budget < 0) break;
    recipientInfos.push(new pkijs.RecipientInfo({ schema: r }));
  }
  const base = {
    recipientInfos,
    moreRecipients: recipientInfos.length < infos.valueBlock.value.length,
    contentType: ct.valueBlock.toString(),
    algorithm: new pkijs.AlgorithmIdentifier({ schema: alg }),
    ciphertext: octetStringContent(body),
  };
  if (type === OID.envelopedData) return { ...base, authenticated: false };
  let aad: Buffer | undefined;
  const authAttrs = fields[i];
  if (authAttrs?.idBlock.tagClass === 3 && authAttrs.idBlock.tagNumber === 1) {
    // RFC 5083: the AAD is the DER of authAttrs with an explicit SET OF tag.
    aad = Buffer.from(encodedBytes(authAttrs));
    aad[0] = 0x31;
    i++;
  }
  const mac = fields[i];
  if (!(mac instanceof asn1js.OctetString)) fail('AuthEnvelopedData without mac');
  return { ...base, authenticated: true, tag: toBuffer(mac.valueBlock.valueHexView), aad };
}

/** The rid (issuerAndSerialNumber, or a subjectKeyIdentifier OCTET STRING) is `cert`'s. */
function namesCertificate(rid: unknown, cert: CertificateInfo): boolean {
  if (rid instanceof pkijs.IssuerAndSerialNumber) {
    return (
      toBuffer(rid.serialNumber.valueBlock.valueHexView).equals(cert.serial) &&
      (derOf(rid.issuer).equals(cert.issuerDer) || cert.pkijs.issuer.isEqual(rid.issuer))
    );
  }
  if (rid instanceof asn1js.OctetString && cert.subjectKeyId) {
    return toBuffer(rid.valueBlock.valueHexView).equals(cert.subjectKeyId);
  }
  return false;
}

function oaepHash(params: unknown): string {
  if (!(params instanceof asn1js.Sequence)) return 'sha1';
  const p = new pkijs.RSAESOAEPParams({ schema: params });
  return digestByOid(p.hashAlgorithm.algorithmId);
}

/**
 * A content key that does not come out of its RecipientInfo is replaced by
 * a random one, and decryption goes on: the content then fails as tampered
 * content does (the AEAD tag, or CBC content that no signature vouches for),
 * so a broken key blob and a broken ciphertext are one outcome after the
 * same work. RSA PKCS#1 v1.5 does the same inside, by implicit rejection.
 */
function orRandomKey(recover: () => Buffer, keyLength: number): Buffer {
  try {
    return recover();
  } catch (err) {
    if (err instanceof CmsError && err.code === 'decrypt-failed') return randomBytes(keyLength);
    throw err;
  }
}

/** The content key from an RSA key-transport RecipientInfo's encrypted key. */
function keyTransport(
  alg: string,
  params: () => unknown,
  wrapped: Buffer,
  key: DecryptionKey,
  keyLength: number,
): Buffer {
  if (alg === OID.rsaEncryption)
    return decryptPkcs1KeyTransport(key.privateKey, wrapped, keyLength);
  if (alg === OID.rsaesOaep) {
    try {
      const hash = oaepHash(params());
      return privateDecrypt(
        { key: key.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
        wrapped,
      );
    } catch {
      throw new CmsError('decrypt-failed', 'RSA-OAEP key transport did not decrypt');
    }
  }
  throw new CmsError('unsupported', `key transport algorithm ${alg}`);
}

function originatorKey(kari: pkijs.KeyAgreeRecipientInfo, ours: KeyObject): KeyObject {
  if (kari.originator.variant !== 3)
    throw new CmsError('unsupported', 'key agreement with a static originator key');
  const opk = kari.originator.value as pkijs.OriginatorPublicKey;
  // The originator's algorithm parameters may be absent: the curve is ours.
  const keyAlgorithm =
    ours.asymmetricKeyType === 'x25519'
      ? algorithm(OID.x25519)
      : algorithm(
          OID.ecPublicKey,
          oid(
            ours.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? OID.secp384r1 : OID.secp256r1,
          ),
        );
  const spki = seq(
    keyAlgorithm,
    new asn1js.BitString({ valueHex: opk.publicKey.valueBlock.valueHexView }),
  );
  try {
    return createPublicKey({ key: derOf(spki), format: 'der', type: 'spki' });
  } catch {
    throw new CmsError('decrypt-failed', 'the originator public key is not on our curve');
  }
}

/** The RecipientEncryptedKey of a KeyAgreeRecipientInfo addressed to `key`, if any. */
function addressedTo(
  kari: pkijs.KeyAgreeRecipientInfo,
  key: DecryptionKey,
): pkijs.RecipientEncryptedKey | undefined {
  return kari.recipientEncryptedKeys.encryptedKeys.find((k) =>
    namesCertificate(
      // 1: issuerAndSerialNumber; 2: rKeyId, a RecipientKeyIdentifier (RFC 5652
      // 6.2.2) as Bouncy Castle writes it, matched by its subjectKeyIdentifier.
      k.rid.variant === 2
        ? (k.rid.value as pkijs.RecipientKeyIdentifier).subjectKeyIdentifier
        : k.rid.value,
      key.certificate,
    ),
  );
}

function keyAgreement(kari: pkijs.KeyAgreeRecipientInfo, key: DecryptionKey): Buffer {
  const rek = addressedTo(kari, key)!;
  let wrapAlg: pkijs.AlgorithmIdentifier;
  try {
    wrapAlg = new pkijs.AlgorithmIdentifier({
      schema: kari.keyEncryptionAlgorithm.algorithmParams,
    });
  } catch {
    throw new CmsError('malformed', 'key agreement without a readable key wrap algorithm');
  }
  const ukm = kari.ukm ? toBuffer(kari.ukm.valueBlock.valueHexView) : undefined;
  return agreeAndUnwrap(
    key.privateKey,
    originatorKey(kari, key.privateKey),
    kari.keyEncryptionAlgorithm.algorithmId,
    wrapAlg.algorithmId,
    ukm,
    toBuffer(rek.encryptedKey.valueBlock.valueHexView),
  );
}

/** The content key for `key`, if one of the RecipientInfos is addressed to it. */
function recoverContentKey(
  env: Envelope,
  key: DecryptionKey,
): { cek: Buffer; keyEncryption: string } | undefined {
  const keyLength = cipherKeyLength(env.algorithm.algorithmId);
  for (const ri of env.recipientInfos) {
    if (ri.variant === 1) {
      const ktri = ri.value as pkijs.KeyTransRecipientInfo;
      if (!namesCertificate(ktri.rid, key.certificate)) continue;
      const alg = ktri.keyEncryptionAlgorithm;
      return {
        cek: orRandomKey(
          () =>
            keyTransport(
              alg.algorithmId,
              () => alg.algorithmParams,
              toBuffer(ktri.encryptedKey.valueBlock.valueHexView),
              key,
              keyLength,
            ),
          keyLength,
        ),
        keyEncryption: alg.algorithmId,
      };
    }
    if (ri.variant === 2) {
      const kari = ri.value as pkijs.KeyAgreeRecipientInfo;
      if (!addressedTo(kari, key)) continue;
      const cek = orRandomKey(() => keyAgreement(kari, key), keyLength);
      return { cek, keyEncryption: kari.keyEncryptionAlgorithm.algorithmId };
    }
  }
  return undefined;
}

export function decryptEnvelope(
  der: Uint8Array,
  keys: readonly DecryptionKey[],
  limits: Asn1Limits = DEFAULT_ASN1_LIMITS,
): DecryptResult {
  const common = readKeyTransportEnvelope(der);
  if (common) return decryptKeyTransportEnvelope(common, keys, limits);
  const ci = parseContentInfo(der, limits);
  if (ci.contentType !== OID.envelopedData && ci.contentType !== OID.authEnvelopedData) {
    throw new CmsError('unsupported', `content type ${ci.contentType} is not (Auth)EnvelopedData`);
  }
  let env: Envelope;
  try {
    env = readEnvelope(ci.contentType, ci.content);
  } catch (err) {
    if (err instanceof CmsError) throw err;
    throw new CmsError(
      'malformed',
      `enveloped data: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const algId = env.algorithm.algorithmId;
  if (
    !env.authenticated &&
    (algId === OID.aes128Gcm || algId === OID.aes256Gcm || algId === OID.aes192Gcm)
  ) {
    throw gcmWithoutTag();
  }
  for (const key of keys) {
    const recovered = recoverContentKey(env, key);
    if (!recovered) continue;
    const aead = env.tag ? { tag: env.tag, ...(env.aad ? { aad: env.aad } : {}) } : undefined;
    const content = decryptContent(
      algId,
      env.algorithm.algorithmParams as asn1js.AsnType | undefined,
      recovered.cek,
      env.ciphertext,
      aead,
    );
    return {
      contentType: env.contentType,
      content,
      authenticated: env.authenticated,
      contentEncryption: algId,
      keyEncryption: recovered.keyEncryption,
      recipient: key.certificate,
    };
  }
  throw notForUs(env.moreRecipients);
}

/** No RecipientInfo looked at is addressed to a key of ours. */
function notForUs(moreRecipients: boolean): CmsError {
  return new CmsError(
    'no-recipient',
    moreRecipients
      ? `the message is not encrypted to any key we hold among its first ${MAX_RECIPIENT_INFOS} recipients (the rest are not looked at)`
      : 'the message is not encrypted to any key we hold',
  );
}

function gcmWithoutTag(): CmsError {
  return new CmsError(
    'unsupported',
    'AES-GCM inside EnvelopedData carries no tag; only AuthEnvelopedData is accepted',
  );
}

/** Small DER (algorithm parameters, a Name) as asn1js, for the helpers that read those. */
function asn1Of(der: Buffer, limits: Asn1Limits): asn1js.AsnType {
  return parseBer(der, 'algorithm parameters', limits);
}

/** decryptEnvelope for the common shape read by position (envelope-reader.ts). */
function decryptKeyTransportEnvelope(
  env: KeyTransportEnvelope,
  keys: readonly DecryptionKey[],
  limits: Asn1Limits,
): DecryptResult {
  const algId = env.contentEncryption;
  if (
    !env.authenticated &&
    (algId === OID.aes128Gcm || algId === OID.aes256Gcm || algId === OID.aes192Gcm)
  ) {
    throw gcmWithoutTag();
  }
  const keyLength = cipherKeyLength(algId);
  for (const key of keys) {
    const r = env.recipients.find((x) => identifies(x.rid, key.certificate));
    if (!r) continue;
    const cek = orRandomKey(
      () =>
        keyTransport(
          r.keyEncryption,
          () => (r.keyEncryptionParams ? asn1Of(r.keyEncryptionParams, limits) : undefined),
          r.encryptedKey,
          key,
          keyLength,
        ),
      keyLength,
    );
    const aead = env.tag ? { tag: env.tag, ...(env.aad ? { aad: env.aad } : {}) } : undefined;
    const params = env.contentEncryptionParams
      ? asn1Of(env.contentEncryptionParams, limits)
      : undefined;
    return {
      contentType: env.contentType,
      content: decryptContent(algId, params, cek, env.ciphertext, aead),
      authenticated: env.authenticated,
      contentEncryption: algId,
      keyEncryption: r.keyEncryption,
      recipient: key.certificate,
    };
  }
  throw notForUs(env.moreRecipients);
}
