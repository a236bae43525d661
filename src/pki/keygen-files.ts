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

/**
 * Complete or absent, never half-written: a file this call created is
 * removed again when writing it fails, so a full or read-only disk leaves
 * nothing behind that a later start would choke on. wx: an existing key is
 * never overwritten by accident.
 */
async function writeFile(path: string, text: string, mode: number): Promise<void> {
  let file: fs.FileHandle;
  try {
    file = await fs.open(path, 'wx', mode);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST') throw new Error(`${path} exists: refusing to overwrite it`);
    throw new Error(`cannot write ${path}: ${e.message.replace(/, \w+( '.*')?$/, '')}`, {
      cause: err,
    });
  }
  try {
    await file.writeFile(text);
    await file.sync();
  } catch (err) {
    await fs.rm(path, { force: true });
    // Node names no file for a failed write ("ENOSPC: no space left on device, write").
    throw new Error(`cannot write ${path}: ${(err as Error).message.replace(/, \w+$/, '')}`, {
      cause: err,
    });
  } finally {
    await file.close();
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
  const written: string[] = [];
  try {
    for (const [path, text, mode] of files) {
      await writeFile(path, text, mode);
      written.push(path);
    }
  } catch (err) {
    // Half an identity (a signing key without its certificate...) is worse than none.
    await Promise.all(written.map((p) => fs.rm(p, { force: true })));
    throw err;
  }
  return { files: files.map(([p]) => p), caCertificate: join(caDir, `${domain}.ca.crt.pem`) };
}
