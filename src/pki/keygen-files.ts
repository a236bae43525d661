/**
 * Writing a generated domain PKI in the DOMSEC_KEYS_DIR layout: signing and
 * encryption keys beside their certificates (CA appended), the CA itself in
 * `ca/` so its key never counts as a domain key. Keys are created 0600.
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { certificatePem, type DomainPki, keyPem } from './keygen.js';

export interface WrittenPki {
  readonly files: readonly string[];
  /** The CA certificate partners install as a trust anchor. */
  readonly caCertificate: string;
}

async function writeFile(path: string, text: string, mode: number): Promise<void> {
  // wx: never overwrite an existing key by accident.
  try {
    await fs.writeFile(path, text, { mode, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(`${path} exists: refusing to overwrite it`);
    throw err;
  }
}

export async function writeDomainPki(
  dir: string,
  domain: string,
  pki: DomainPki,
): Promise<WrittenPki> {
  const caDir = join(dir, 'ca');
  await fs.mkdir(caDir, { recursive: true, mode: 0o700 });
  const ca = certificatePem(pki.ca.certificate);
  const files: [string, string, number][] = [
    [join(dir, `${domain}.sign.key.pem`), keyPem(pki.signing.privateKey), 0o600],
    [join(dir, `${domain}.sign.crt.pem`), certificatePem(pki.signing.certificate) + ca, 0o644],
    [join(dir, `${domain}.encrypt.key.pem`), keyPem(pki.encryption.privateKey), 0o600],
    [
      join(dir, `${domain}.encrypt.crt.pem`),
      certificatePem(pki.encryption.certificate) + ca,
      0o644,
    ],
    [join(caDir, `${domain}.ca.key.pem`), keyPem(pki.ca.privateKey), 0o600],
    [join(caDir, `${domain}.ca.crt.pem`), ca, 0o644],
  ];
  for (const [path, text, mode] of files) await writeFile(path, text, mode);
  return { files: files.map(([p]) => p), caCertificate: join(caDir, `${domain}.ca.crt.pem`) };
}
