/**
 * What "a secret leaked" looks like in text output: fragments of private keys
 * in the forms a dump would take (PEM lines, base64 and hex of the DER and of
 * the private exponent or scalar), passphrases and passwords as given and
 * URL-encoded, message words raw and base64.
 */

import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { encodings } from './security-fixture.js';

/** Distinctive fragments of a private key, none shorter than 16 characters. */
export function keyFragments(key: KeyObject): string[] {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const pem = key.export({ format: 'pem', type: 'pkcs8' }).toString();
  const jwk = key.export({ format: 'jwk' });
  const d = Buffer.from(jwk.d ?? '', 'base64url');
  assert.ok(d.length >= 16, 'a private key with a private part');
  const bodyLines = pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
  return [
    // The key file's first 32 bytes, as the brief names them (also a marker of any PKCS#8 dump).
    der.subarray(0, 32).toString('base64'),
    // Every PEM line (its start), the private part in base64, base64url and hex.
    ...bodyLines.map((l) => l.slice(0, 24)),
    d.subarray(0, 24).toString('base64'),
    d.subarray(0, 24).toString('base64url'),
    d.subarray(0, 16).toString('hex'),
    'PRIVATE KEY-----',
  ];
}

/** A password or passphrase as it could appear: raw, URL-encoded, base64. */
export function passwordForms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')];
}

/** Fails naming the first fragment of `secrets` found in `text` (and where). */
export function assertNoneIn(
  text: string,
  secrets: Record<string, readonly string[]>,
  where: string,
): void {
  for (const [what, fragments] of Object.entries(secrets)) {
    for (const f of fragments) {
      const at = text.indexOf(f);
      assert.ok(
        at < 0,
        `${where} contains ${what} (${f}) near: ${text.slice(Math.max(0, at - 80), at + 80)}`,
      );
    }
  }
}

/** The words of a message (subject, body) raw and in base64. */
export function messageForms(...texts: string[]): string[] {
  return texts.flatMap(encodings);
}
