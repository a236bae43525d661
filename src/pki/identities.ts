/**
 * Our domain identities from DOMSEC_KEYS_DIR. For each domain D, every pair
 * `D[.label].key.pem` + `D[.label].crt.pem` (certificate first, chain after)
 * is one key: several per domain allow rollover and separate signing and
 * encryption keys. The newest currently valid signing-capable key signs;
 * every key decrypts. Key files readable by group or others are refused.
 */

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type CertificateInfo, loadCertificatesPem } from '../cms/certificate.js';
import type { DecryptionKey } from '../cms/decrypt.js';
import type { SigningIdentity } from '../cms/sign.js';
import { encryptionProblem } from './static-directory.js';

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

export interface KeyPair {
  readonly label: string;
  readonly certificate: CertificateInfo;
  readonly chain: readonly CertificateInfo[];
  readonly privateKey: KeyObject;
}

export interface DomainIdentity {
  readonly domain: string;
  readonly keys: readonly KeyPair[];
  /** The key that signs now, if any is valid for signing. */
  readonly signer: SigningIdentity | undefined;
  /** Every key, for decryption (old keys keep decrypting mail in flight). */
  readonly decryptionKeys: readonly DecryptionKey[];
  /** When the signing certificate expires (for the expiry gauge and warnings). */
  readonly expires: Date | undefined;
}

function canSign(c: CertificateInfo): boolean {
  const ku = c.pkijs.extensions?.find((e) => e.extnID === '2.5.29.15');
  if (!ku) return true;
  const bits = (ku.parsedValue as { valueBlock: { valueHexView: Uint8Array } }).valueBlock
    .valueHexView;
  return ((bits[0] ?? 0) & 0x80) !== 0; // digitalSignature
}

async function readKeyFile(path: string): Promise<KeyObject> {
  const stat = await fs.stat(path);
  if ((stat.mode & 0o077) !== 0) {
    throw new IdentityError(
      `${path} is readable by group or others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`,
    );
  }
  try {
    return createPrivateKey(await fs.readFile(path));
  } catch (err) {
    throw new IdentityError(
      `${path}: not a usable private key (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

async function loadPair(dir: string, base: string, label: string): Promise<KeyPair> {
  const keyPath = join(dir, `${base}${label}.key.pem`);
  const certPath = join(dir, `${base}${label}.crt.pem`);
  const privateKey = await readKeyFile(keyPath);
  let certs: CertificateInfo[];
  try {
    certs = loadCertificatesPem(await fs.readFile(certPath, 'utf8'));
  } catch (err) {
    throw new IdentityError(`${certPath}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const [certificate, ...chain] = certs;
  if (!certificate) throw new IdentityError(`${certPath}: no certificate`);
  const publicDer = certificate.publicKey.export({ format: 'der', type: 'spki' });
  const fromKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  if (!publicDer.equals(fromKey))
    throw new IdentityError(`${keyPath} does not match the certificate in ${certPath}`);
  return { label: label.replace(/^\./, '') || 'default', certificate, chain, privateKey };
}

export function identityFromKeys(
  domain: string,
  keys: readonly KeyPair[],
  now: Date = new Date(),
): DomainIdentity {
  const valid = keys.filter((k) => k.certificate.notBefore <= now && now <= k.certificate.notAfter);
  const signing = valid
    .filter((k) => canSign(k.certificate))
    .sort((a, b) => b.certificate.notBefore.getTime() - a.certificate.notBefore.getTime())[0];
  return {
    domain,
    keys,
    signer: signing
      ? {
          certificate: signing.certificate,
          chain: signing.chain,
          privateKey: signing.privateKey,
          // Partners harvest our encryption certificate from the signature.
          extraCertificates: valid
            .filter((k) => k !== signing && encryptionProblem(k.certificate, now) === undefined)
            .map((k) => k.certificate),
        }
      : undefined,
    decryptionKeys: keys.map((k) => ({ certificate: k.certificate, privateKey: k.privateKey })),
    expires: signing?.certificate.notAfter,
  };
}

/** `D.key.pem` -> '', `D.sign.key.pem` -> '.sign'; undefined for files of other domains. */
function keyLabel(name: string, domain: string): string | undefined {
  const lower = name.toLowerCase();
  if (!lower.startsWith(`${domain}.`) || !lower.endsWith('.key.pem')) return undefined;
  const label = name.slice(domain.length, -'.key.pem'.length);
  return label === '' || /^\.[a-z0-9_-]+$/i.test(label) ? label : undefined;
}

/** Loads the identities of `domains` from `dir`; a domain without any key is simply absent. */
export async function loadIdentities(
  dir: string,
  domains: readonly string[],
  now: Date = new Date(),
): Promise<Map<string, DomainIdentity>> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    throw new IdentityError(`${dir}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const out = new Map<string, DomainIdentity>();
  for (const domain of domains) {
    const pairs: KeyPair[] = [];
    for (const name of names.sort()) {
      const label = keyLabel(name, domain);
      if (label !== undefined) pairs.push(await loadPair(dir, name.slice(0, domain.length), label));
    }
    if (pairs.length > 0) out.set(domain, identityFromKeys(domain, pairs, now));
  }
  return out;
}
