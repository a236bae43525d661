/**
 * What protection an entity carries, from its Content-Type: both the
 * application/pkcs7-* names (openssl cms) and the x-pkcs7-* ones (openssl
 * smime, older clients), and .p7m attachments sent as octet-stream.
 */

import type { ContentType } from '../mime/index.js';

export type Protection =
  | 'enveloped'
  | 'signed-opaque'
  | 'signed-detached'
  | 'compressed'
  | 'certs-only'
  /** A pkcs7-mime body whose smime-type is missing: the CMS content type decides. */
  | 'pkcs7-unknown'
  | 'none';

const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);
const PKCS7_SIGNATURE = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);

export function classify(ct: ContentType): Protection {
  const media = ct.mediaType;
  if (media === 'multipart/signed') {
    const protocol = (ct.params.get('protocol') ?? '').toLowerCase();
    return PKCS7_SIGNATURE.has(protocol) ? 'signed-detached' : 'none';
  }
  const name = (ct.params.get('name') ?? '').toLowerCase();
  if (PKCS7_MIME.has(media) || (media === 'application/octet-stream' && /\.p7[mc]$/.test(name))) {
    const type = (ct.params.get('smime-type') ?? '').toLowerCase();
    if (type === 'enveloped-data' || type === 'authenveloped-data' || type === 'enveloped-x400')
      return 'enveloped';
    if (type === 'signed-data' || type === 'signed-x400') return 'signed-opaque';
    if (type === 'compressed-data') return 'compressed';
    if (type === 'certs-only' || name.endsWith('.p7c')) return 'certs-only';
    return 'pkcs7-unknown';
  }
  return 'none';
}

/** Already protected in a way that outbound processing must not wrap again by default. */
export function isOpaquelyProtected(p: Protection): boolean {
  return p === 'enveloped' || p === 'signed-opaque' || p === 'compressed' || p === 'pkcs7-unknown';
}
