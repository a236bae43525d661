/**
 * Our domain identities from DOMSEC_KEYS_DIR. For each domain D, every pair
 * `D[.label].key.pem` + `D[.label].crt.pem` (certificate first, chain after)
 * and every `D[.label].p12` is one key (a PKCS#12 file with several key pairs
 * gives several): several per domain allow rollover and separate signing and
 * encryption keys, and PEM and PKCS#12 keys of one domain combine. The newest
 * currently valid signing-capable key signs; every key decrypts. Key files,
 * PKCS#12 files and their `.pass` files readable by group or others are
 * refused. A file belongs to the longest configured domain its name starts
 * with (`example.org.uk.p12` is example.org.uk's, not example.org's key "uk").
 */

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';
import { type CertificateInfo, loadCertificatesPem } from '../cms/certificate.js';
import type { DecryptionKey } from '../cms/decrypt.js';
import type { SigningIdentity } from '../cms/sign.js';
import { PKCS12_MAX_BYTES, Pkcs12Error, readPkcs12 } from './pkcs12.js';
import { encryptionProblem } from './static-directory.js';

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

export interface KeyPair {
  /**
   * Unique within the domain, from the file name without the domain: `sign`
   * for D.sign.key.pem, `default` for D.key.pem, `sign.p12` for D.sign.p12,
   * `default.p12` for D.p12; a PKCS#12 file's second pair gets `#2`, and so on.
   */
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

/** Refuses a secret file (key, PKCS#12, passphrase) that group or others may read. */
async function checkPrivate(path: string): Promise<number> {
  let stat: Stats;
  try {
    stat = await fs.stat(path);
  } catch (err) {
    throw new IdentityError(`${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new IdentityError(
      `${path} grants group or others access (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`,
    );
  }
  return stat.size;
}

async function readKeyFile(path: string): Promise<KeyObject> {
  await checkPrivate(path);
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

/**
 * The passphrase of `D[.label].p12`: its `D[.label].pass` file (one trailing
 * line end dropped) wins over DOMSEC_KEYS_PASSPHRASE.
 */
async function p12Passphrase(
  p12Path: string,
  passPath: string,
  fallback: string | undefined,
): Promise<string> {
  let text: string | undefined;
  try {
    text = await fs.readFile(passPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new IdentityError(`${passPath}: ${code ?? 'unreadable'}`);
  }
  if (text !== undefined) {
    await checkPrivate(passPath);
    return text.replace(/\r?\n$/, '');
  }
  if (fallback !== undefined) return fallback;
  throw new IdentityError(
    `${p12Path}: no passphrase: write it to ${passPath} (mode 600) or set DOMSEC_KEYS_PASSPHRASE`,
  );
}

async function loadP12Pairs(
  dir: string,
  name: string,
  label: string,
  fallbackPassphrase: string | undefined,
): Promise<KeyPair[]> {
  const p12Path = join(dir, name);
  const size = await checkPrivate(p12Path);
  if (size > PKCS12_MAX_BYTES) {
    throw new IdentityError(
      `${p12Path}: ${size} bytes exceed the limit of ${PKCS12_MAX_BYTES} for a PKCS#12 file`,
    );
  }
  const passPath = join(dir, `${name.slice(0, -'.p12'.length)}.pass`);
  const passphrase = await p12Passphrase(p12Path, passPath, fallbackPassphrase);
  let pairs: Awaited<ReturnType<typeof readPkcs12>>;
  try {
    pairs = await readPkcs12(await fs.readFile(p12Path), passphrase, p12Path);
  } catch (err) {
    if (err instanceof Pkcs12Error) throw new IdentityError(err.message);
    throw err;
  }
  const base = `${label.replace(/^\./, '') || 'default'}.p12`;
  return pairs.map((p, i) => ({ label: i === 0 ? base : `${base}#${i + 1}`, ...p }));
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

interface KeyFile {
  readonly kind: 'pem' | 'p12';
  /** '' or '.label' */
  readonly label: string;
}

/**
 * `D.key.pem` -> pem '', `D.sign.key.pem` -> pem '.sign', `D.new.p12` -> p12
 * '.new'; undefined for files of other domains and every other file.
 */
function keyFile(name: string, domain: string): KeyFile | undefined {
  const lower = name.toLowerCase();
  if (!lower.startsWith(`${domain}.`)) return undefined;
  const suffix = lower.endsWith('.key.pem') ? '.key.pem' : lower.endsWith('.p12') ? '.p12' : '';
  if (suffix === '') return undefined;
  const label = name.slice(domain.length, -suffix.length);
  if (label !== '' && !/^\.[a-z0-9_-]+$/i.test(label)) return undefined;
  return { kind: suffix === '.p12' ? 'p12' : 'pem', label };
}

export interface LoadIdentitiesOptions {
  /** When "currently valid" is judged (default: now). */
  readonly now?: Date;
  /** DOMSEC_KEYS_PASSPHRASE: opens `.p12` files that have no `.pass` file beside them. */
  readonly passphrase?: string | undefined;
}

/**
 * Loads the identities of `domains` from `dir`; a domain without any key is
 * simply absent. The third argument may still be a bare `now` Date.
 */
export async function loadIdentities(
  dir: string,
  domains: readonly string[],
  options: LoadIdentitiesOptions | Date = {},
): Promise<Map<string, DomainIdentity>> {
  const { now = new Date(), passphrase } = options instanceof Date ? { now: options } : options;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    throw new IdentityError(`${dir}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  // Longest domain first, so that a file is claimed by the most specific domain.
  const byLength = [...domains].sort((a, b) => b.length - a.length);
  const files = new Map<string, { name: string; file: KeyFile }[]>();
  for (const name of names.sort()) {
    for (const domain of byLength) {
      const file = keyFile(name, domain);
      if (!file) continue;
      files.set(domain, [...(files.get(domain) ?? []), { name, file }]);
      break;
    }
  }
  const out = new Map<string, DomainIdentity>();
  for (const domain of domains) {
    const pairs: KeyPair[] = [];
    for (const { name, file } of files.get(domain) ?? []) {
      if (file.kind === 'pem')
        pairs.push(await loadPair(dir, name.slice(0, domain.length), file.label));
      else pairs.push(...(await loadP12Pairs(dir, name, file.label, passphrase)));
    }
    if (pairs.length > 0) out.set(domain, identityFromKeys(domain, pairs, now));
  }
  return out;
}
