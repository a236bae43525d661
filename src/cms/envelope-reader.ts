/**
 * The common (Auth)EnvelopedData read by position: DER, key-transport
 * recipients only, the ciphertext inside. asn1js spends ~6 us per node and
 * pkijs then matches each RecipientInfo against its schema: ~0.5 ms of a
 * 10 KB message's decryption, more than the RSA work. Anything else
 * (BER as gpgsm and `openssl cms -stream` write it, key agreement,
 * originatorInfo, other recipient types) gives undefined and is read by the
 * asn1js path in decrypt.ts, as before.
 */

import {
  algorithmOf,
  bufferOf,
  type CertificateId,
  certificateIdOf,
  contentInfoOf,
  TAG,
} from './der-fields.js';
import { childrenOf, contentOf, encodingOf, oidText, type Tlv } from './der-reader.js';
import { OID } from './oids.js';

/**
 * RecipientInfos looked at per (Auth)EnvelopedData: a hostile message
 * chooses their number, and each costs a parse and a comparison with each
 * of our keys (a name comparison is a parse more). A message encrypted to
 * more is read for the first ones only; ours must be among them.
 */
export const MAX_RECIPIENT_INFOS = 64;

export interface KeyTransportRecipient {
  readonly rid: CertificateId;
  readonly keyEncryption: string;
  /** DER of the key-encryption algorithm parameters, when present. */
  readonly keyEncryptionParams: Buffer | undefined;
  readonly encryptedKey: Buffer;
}

export interface KeyTransportEnvelope {
  readonly authenticated: boolean;
  /** The first MAX_RECIPIENT_INFOS RecipientInfos. */
  readonly recipients: readonly KeyTransportRecipient[];
  /** More RecipientInfos follow, not looked at. */
  readonly moreRecipients: boolean;
  readonly contentType: string;
  readonly contentEncryption: string;
  /** DER of the content-encryption algorithm parameters (IV, GCMParameters), when present. */
  readonly contentEncryptionParams: Buffer | undefined;
  readonly ciphertext: Buffer;
  readonly tag?: Buffer;
  readonly aad?: Buffer;
}

function keyTransportRecipient(der: Uint8Array, t: Tlv): KeyTransportRecipient | undefined {
  // KeyTransRecipientInfo ::= SEQUENCE { version, rid, keyEncryptionAlgorithm, encryptedKey }
  if (t.tag !== TAG.SEQUENCE) return undefined;
  const [version, rid, alg, key, extra] = childrenOf(der, t);
  if (version?.tag !== TAG.INTEGER || !rid || key?.tag !== TAG.OCTET_STRING || extra)
    return undefined;
  const keyEncryption = algorithmOf(der, alg);
  if (!keyEncryption) return undefined;
  const id = certificateIdOf(der, rid);
  if (!id) return undefined;
  return {
    rid: id,
    keyEncryption: keyEncryption.oid,
    keyEncryptionParams: keyEncryption.params,
    encryptedKey: bufferOf(der, contentOf(der, key)),
  };
}

/** The envelope, or undefined when it is not the common shape this reads. */
export function readKeyTransportEnvelope(der: Uint8Array): KeyTransportEnvelope | undefined {
  try {
    const ci = contentInfoOf(der);
    if (!ci) return undefined;
    const authenticated = ci.contentType === OID.authEnvelopedData;
    if (!authenticated && ci.contentType !== OID.envelopedData) return undefined;
    const body = ci.body;
    const fields = childrenOf(der, body);
    // version, recipientInfos TAG.SET, encryptedContentInfo; no originatorInfo [0].
    const [version, infos, eci] = fields;
    if (version?.tag !== TAG.INTEGER || infos?.tag !== TAG.SET || eci?.tag !== TAG.SEQUENCE)
      return undefined;
    const recipients: KeyTransportRecipient[] = [];
    const read = childrenOf(der, infos, MAX_RECIPIENT_INFOS + 1);
    for (const info of read.slice(0, MAX_RECIPIENT_INFOS)) {
      const r = keyTransportRecipient(der, info);
      if (!r) return undefined;
      recipients.push(r);
    }
    const [eType, eAlg, eContent, eMore] = childrenOf(der, eci);
    const contentEncryption = algorithmOf(der, eAlg);
    // encryptedContent [0] IMPLICIT OCTET STRING, primitive (a constructed one is BER-style).
    if (
      eType?.tag !== TAG.OBJECT_IDENTIFIER ||
      !contentEncryption ||
      eContent?.tag !== 0x80 ||
      eMore
    )
      return undefined;
    const base = {
      recipients,
      moreRecipients: read.length > MAX_RECIPIENT_INFOS,
      contentType: oidText(contentOf(der, eType)),
      contentEncryption: contentEncryption.oid,
      contentEncryptionParams: contentEncryption.params,
      ciphertext: bufferOf(der, contentOf(der, eContent)),
    };
    if (!authenticated) return fields.length === 3 ? { ...base, authenticated } : undefined;
    // AuthEnvelopedData: [authAttrs [1]], mac OCTET STRING, [unauthAttrs [2]].
    let i = 3;
    let aad: Buffer | undefined;
    if (fields[i]?.tag === 0xa1) {
      // RFC 5083: the AAD is the DER of authAttrs with an explicit TAG.SET OF tag.
      aad = Buffer.from(encodingOf(der, fields[i]!));
      aad[0] = TAG.SET;
      i++;
    }
    const mac = fields[i];
    if (mac?.tag !== TAG.OCTET_STRING) return undefined;
    const tag = bufferOf(der, contentOf(der, mac));
    return { ...base, authenticated, tag, ...(aad ? { aad } : {}) };
  } catch {
    return undefined;
  }
}
