/** A transform report as plain JSON: certificates summarised, never their keys or DER. */

import { type CertificateInfo, describeName } from '../cms/certificate.js';
import type { SignerReport } from '../cms/verify.js';
import type { TransformError, TransformReport } from './types.js';

export function certificateSummary(c: CertificateInfo): object {
  return {
    subject: describeName(c, 'subject'),
    issuer: describeName(c, 'issuer'),
    serial: c.serial.toString('hex'),
    emails: c.rfc822Names,
    notAfter: c.notAfter.toISOString(),
    sha256: c.fingerprint,
  };
}

function signerJson(s: SignerReport): object {
  return {
    valid: s.valid,
    ...(s.failure ? { failure: s.failure } : {}),
    ...(s.certificate ? { certificate: certificateSummary(s.certificate) } : {}),
    ...(s.chain
      ? {
          chain: {
            trusted: s.chain.trusted,
            ...(s.chain.reason ? { reason: s.chain.reason } : {}),
            ...(s.chain.temporary ? { temporary: true } : {}),
            ...(s.chain.path ? { path: s.chain.path.map(certificateSummary) } : {}),
            ...(s.chain.notes?.length ? { notes: s.chain.notes } : {}),
          },
        }
      : {}),
    signatureTypes: s.signatureTypes,
    digestAlgorithm: s.digestAlgorithm,
    signatureAlgorithm: s.signatureAlgorithm,
    ...(s.signingTime ? { signingTime: s.signingTime.toISOString() } : {}),
  };
}

export function reportToJson(report: TransformReport, error?: TransformError): object {
  return {
    direction: report.direction,
    ok: error === undefined,
    ...(error ? { error } : {}),
    actions: report.actions,
    notes: report.notes,
    ...(report.cipher ? { cipher: report.cipher } : {}),
    ...(report.keyTransport ? { keyTransport: report.keyTransport } : {}),
    layers: report.layers.map((l) => ({
      kind: l.kind,
      ...(l.algorithm ? { algorithm: l.algorithm } : {}),
      ...(l.keyEncryption ? { keyEncryption: l.keyEncryption } : {}),
      ...(l.contentType ? { contentType: l.contentType } : {}),
      ...(l.recipient ? { recipient: certificateSummary(l.recipient) } : {}),
      ...(l.signers ? { signers: l.signers.map(signerJson) } : {}),
    })),
  };
}
