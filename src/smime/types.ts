/**
 * The S/MIME transform's outside: explicit context in, message and report
 * out. Every failure is a typed result, never an escaping exception.
 */

import type { CertificateInfo } from '../cms/certificate.js';
import type { ContentCipher } from '../cms/content-encryption.js';
import type { DecryptionKey } from '../cms/decrypt.js';
import type { KeyTransport } from '../cms/envelope.js';
import type { SigningIdentity } from '../cms/sign.js';
import type { DigestName } from '../cms/signature-algorithms.js';
import type { CertificateValidator, SignerReport } from '../cms/verify.js';
import type { MimeLimits } from '../mime/index.js';
import type { Authors } from './authors.js';

export type { ContentCipher, KeyTransport };

/** A recipient domain's encryption certificate and what we know it can do. */
export interface PartnerCertificate {
  readonly certificate: CertificateInfo;
  /** SMIMECapabilities learned from the partner's signed mail (OIDs); absent when unknown. */
  readonly capabilities?: readonly string[];
}

export interface OutboundOptions {
  readonly sign: boolean;
  readonly encrypt: boolean;
  /** `detached` (multipart/signed, the default) or `opaque` (pkcs7-mime signed-data). */
  readonly signatureFormat?: 'detached' | 'opaque';
  /** Mail the user already signed: wrap it in our signature (default) or add our SignerInfo beside theirs. */
  readonly alreadySigned?: 'encapsulate' | 'parallel';
  /** Sign, encrypt, then sign again. */
  readonly tripleWrap?: boolean;
  /** Protect the whole message (message/rfc822 inside), minimal outer headers (RFC 9788 style). */
  readonly headerProtection?: boolean;
  /** Sign or encrypt mail that is already encrypted or opaque-signed. */
  readonly reprotect?: boolean;
  readonly digest?: DigestName;
  readonly rsaPss?: boolean;
  /** Overrides the cipher chosen from the partners' capabilities. */
  readonly cipher?: ContentCipher;
  /** Overrides the key transport chosen from the partners' capabilities. */
  readonly keyTransport?: KeyTransport;
  readonly signingTime?: Date;
}

export interface OutboundContext {
  /** Our domain identity; required when signing. */
  readonly signer?: SigningIdentity;
  /** Recipient domains' certificates; required when encrypting. */
  readonly recipients: readonly PartnerCertificate[];
  readonly options: OutboundOptions;
  readonly limits?: MimeLimits;
}

export interface InboundContext {
  /** Every key we hold for our domains (rollover: old keys still decrypt). */
  readonly keys: readonly DecryptionKey[];
  readonly validator?: CertificateValidator;
  /** Certificates known from elsewhere for signers that sent none. */
  readonly knownCertificates?: readonly CertificateInfo[];
  /** Keep multipart/signed layers for clients that show signatures (they are still verified). */
  readonly keepSignatures?: boolean;
  readonly at?: Date;
  readonly limits?: MimeLimits;
  /** Largest decompressed size of compressed-data, as a multiple of its compressed size. */
  readonly maxCompressionRatio?: number;
}

export type LayerKind =
  | 'signed-detached'
  | 'signed-opaque'
  | 'enveloped'
  | 'auth-enveloped'
  | 'compressed';

export interface LayerReport {
  readonly kind: LayerKind;
  /** Content encryption or digest algorithm OIDs, as applicable. */
  readonly algorithm?: string;
  readonly keyEncryption?: string;
  readonly signers?: readonly SignerReport[];
  /** Signed layers: every certificate the signer sent (candidates for harvesting). */
  readonly certificates?: readonly CertificateInfo[];
  /** The certificate of ours the layer was encrypted to. */
  readonly recipient?: CertificateInfo;
  /** The smime-type or content type the layer announced (X.400 types kept). */
  readonly contentType?: string;
}

export type TransformErrorCode =
  | 'no-signer'
  | 'no-recipient-certificate'
  | 'not-encrypted-to-us'
  | 'decrypt-failed'
  | 'malformed-mime'
  | 'malformed-cms'
  | 'unsupported'
  | 'too-large'
  /** AES-CBC content that decrypted but that no bound, valid signature vouches for. */
  | 'unauthenticated-content'
  | 'internal';

export interface TransformError {
  readonly code: TransformErrorCode;
  readonly message: string;
}

export interface TransformReport {
  readonly direction: 'outbound' | 'inbound';
  /** What was done, outermost first: e.g. ['signed', 'encrypted'] or ['decrypted', 'verified']. */
  readonly actions: readonly string[];
  /** Why something was not done, e.g. 'already encrypted'. */
  readonly notes: readonly string[];
  /** Inbound: the protection layers found, outermost first. */
  readonly layers: readonly LayerReport[];
  readonly cipher?: string;
  readonly keyTransport?: string;
  /** Inbound: who the delivered message says wrote it, for binding signers to authors. */
  readonly authors?: Authors;
}

export type TransformResult =
  | { readonly ok: true; readonly message: Buffer; readonly report: TransformReport }
  | { readonly ok: false; readonly error: TransformError; readonly report: TransformReport };

/**
 * An encrypted output whose body, the base64 lines of `der`, is not written
 * yet: a worker hands such a body over a piece at a time, so the whole
 * encoding (34 MB for a 25 MB message) never exists at once.
 */
export interface EncodeLater {
  /** The header block, blank line included. */
  readonly head: Buffer;
  /** The CMS object whose base64 lines are the body. */
  readonly der: readonly Buffer[];
}

/** TransformResult whose message may still be an EncodeLater. */
export type DeferredTransformResult =
  | { readonly ok: true; readonly message: Buffer | EncodeLater; readonly report: TransformReport }
  | { readonly ok: false; readonly error: TransformError; readonly report: TransformReport };
