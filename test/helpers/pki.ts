// Throw-away PKIs built with the real openssl command line, for interop tests.
// Every certificate goes through `openssl ca` (not `x509 -req`) because
// OpenSSL 3.0 has no -not_before/-not_after there, and negative tests need
// explicit, even already-expired, validity dates.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runToolOk } from './openssl.js';

export type KeyAlgo = 'rsa-2048' | 'rsa-3072' | 'rsa-pss' | 'ec-p256' | 'ec-p384' | 'ed25519';
export type Purpose = 'signing' | 'encryption' | 'both';

export interface LeafOptions {
  commonName: string;
  rfc822Names?: string[];
  dnsNames?: string[];
  /** Default: the issuing CA's algorithm. */
  algo?: KeyAlgo;
  /** Default 'both', or 'signing' for rsa-pss/ed25519 keys (they cannot encrypt here). */
  purpose?: Purpose;
  /** Default: one day ago, so a slow clock elsewhere does not see "not yet valid". */
  notBefore?: Date;
  /** Default: one year from now. Put it in the past for expired-certificate tests. */
  notAfter?: Date;
  /** Default true. false writes EKU clientAuth only, which smimesign checks reject. */
  ekuEmailProtection?: boolean;
  /** CRL distribution point and OCSP responder (AIA) URLs written into the certificate. */
  crlUrl?: string;
  ocspUrl?: string;
  /** An OCSP responder certificate: EKU id-kp-OCSPSigning, signing only. */
  ocspSigning?: boolean;
}

/** Revocation pointers for a CA certificate (checked against its issuer). */
export interface CaPointers {
  crlUrl?: string;
  ocspUrl?: string;
}

export interface TestLeaf {
  dir: string;
  certPem: string;
  /** Unencrypted PKCS#8 PEM. */
  keyPem: string;
  certPath: string;
  keyPath: string;
  /** Leaf plus intermediates, root excluded. */
  chainPem: string;
  chainPath: string;
  /** Writes a PKCS#12 (leaf, key, intermediates and root); legacy = RC2/3DES for gpgsm 2.2. */
  p12Path(passphrase: string, legacy?: boolean): Promise<string>;
  /** Upper-case hex as openssl prints it. */
  serialHex: string;
  /** RFC 2253 form, e.g. 'CN=x,O=domsec test'. */
  subject: string;
  /** Upper-case hex, no colons: the form gpgsm uses for key ids. */
  fingerprintSha1: string;
  algo: KeyAlgo;
  purpose: Purpose;
}

export interface TestCa {
  dir: string;
  name: string;
  algo: KeyAlgo;
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
  /** The root of this hierarchy (this CA's own cert for a root). */
  rootCertPath: string;
  /** This CA's cert plus the intermediates above it, root excluded ('' for a root). */
  intermediatesPem: string;
  fingerprintSha1: string;
  issue(opts: LeafOptions): Promise<TestLeaf>;
  issueIntermediate(name: string, algo?: KeyAlgo, pointers?: CaPointers): Promise<TestCa>;
  /** A cross-certificate: `other`'s subject and key, signed by this CA; returns its path. */
  crossCertify(other: TestCa, notAfter?: Date): Promise<string>;
  /** openssl's index.txt of this CA, for `openssl ocsp -index`. */
  readonly indexPath: string;
  revoke(certPath: string, reason?: string): Promise<void>;
  /** Generates a fresh CRL covering every revocation so far (valid 30 days, or `seconds`). */
  crl(opts?: { seconds?: number }): Promise<{ pem: string; path: string }>;
}

const KEYGEN: Record<KeyAlgo, string[]> = {
  'rsa-2048': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  'rsa-3072': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'],
  'rsa-pss': ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'],
  'ec-p256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'ec-p384': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  ed25519: ['-algorithm', 'ED25519'],
};

const DAY = 86_400_000;
const isRsaTransport = (a: KeyAlgo) => a === 'rsa-2048' || a === 'rsa-3072';
const isEc = (a: KeyAlgo) => a === 'ec-p256' || a === 'ec-p384';

function keyUsage(algo: KeyAlgo, purpose: Purpose): string[] {
  const sign = ['digitalSignature', 'nonRepudiation'];
  if (purpose === 'signing') return sign;
  const enc = isRsaTransport(algo) ? 'keyEncipherment' : isEc(algo) ? 'keyAgreement' : '';
  if (!enc) {
    // RSA-PSS keys are signature-only; OpenSSL 3.0 CMS cannot do X25519 key agreement.
    throw new Error(`${algo} keys cannot be used for encryption in these tests`);
  }
  return purpose === 'encryption' ? [enc] : [...sign, enc];
}

/** YYYYMMDDHHMMSSZ; openssl ca still encodes years before 2050 as UTCTime. */
const caTime = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');

const slug = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, '_').slice(0, 40) || 'x';
const subj = (cn: string) => `/O=domsec test/CN=${cn.replace(/[\\/+=]/g, '\\$&')}`;
const checkName = (n: string) => {
  // The names go into an openssl config line where commas separate entries.
  if (!/^[^\s,]+$/.test(n)) throw new Error(`unusable name for a certificate: ${n}`);
  return n;
};

const pointerLines = (p: CaPointers | LeafOptions) => [
  ...(p.crlUrl ? [`crlDistributionPoints = URI:${p.crlUrl}`] : []),
  ...(p.ocspUrl ? [`authorityInfoAccess = OCSP;URI:${p.ocspUrl}`] : []),
];

const caExt = (pointers: CaPointers = {}) =>
  [
    '[ext]',
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    ...pointerLines(pointers),
    '',
  ].join('\n');
const CA_EXT = caExt();

// `default_md = default` lets Ed25519 CAs sign (they take no digest) and gives
// SHA-256 for RSA and ECDSA. serial must be named even though -rand_serial
// never writes it. unique_subject = no lets tests reissue the same name.
const caConfig = (dir: string) => `[ca]
default_ca = CA_default
[CA_default]
dir = ${dir}
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir/newcerts
certificate = $dir/cert.pem
private_key = $dir/key.pem
default_md = default
default_crl_days = 30
policy = policy_any
unique_subject = no
email_in_dn = no
[policy_any]
commonName = supplied
organizationName = optional
`;

const ossl = (...args: string[]) => runToolOk('openssl', args);

/** A fresh private key and a CSR for it; returns the key PEM. */
async function keyAndCsr(algo: KeyAlgo, keyPath: string, csrPath: string, cn: string) {
  await ossl('genpkey', '-quiet', ...KEYGEN[algo], '-out', keyPath);
  await ossl('req', '-new', '-key', keyPath, '-subj', subj(cn), '-out', csrPath);
  return readFile(keyPath, 'utf8');
}

async function certInfo(certPath: string) {
  const args = '-noout -serial -subject -nameopt RFC2253 -fingerprint -sha1'.split(' ');
  const out = (await ossl('x509', '-in', certPath, ...args)).stdout.toString('utf8');
  const field = (prefix: RegExp) => out.match(prefix)?.[1]?.trim() ?? '';
  return {
    serialHex: field(/^serial=(.*)$/m),
    subject: field(/^subject=(.*)$/m),
    fingerprintSha1: field(/Fingerprint=(.*)$/m).replace(/:/g, ''),
  };
}

/** `openssl x509 -text` of a certificate, for assertions on extensions. */
export async function x509Text(certPath: string): Promise<string> {
  return (await ossl('x509', '-in', certPath, '-noout', '-text')).stdout.toString('utf8');
}

class Ca implements TestCa {
  certPem = '';
  keyPem = '';
  fingerprintSha1 = '';
  rootCertPath = '';
  intermediatesPem = '';
  // openssl ca rewrites index.txt on every call: one at a time per CA.
  private tail: Promise<unknown> = Promise.resolve();
  private counter = 0;

  constructor(
    readonly dir: string,
    readonly name: string,
    readonly algo: KeyAlgo,
  ) {}

  get certPath() {
    return join(this.dir, 'cert.pem');
  }
  get keyPath() {
    return join(this.dir, 'key.pem');
  }
  private get configPath() {
    return join(this.dir, 'ca.cnf');
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => {});
    return run;
  }

  /** Signs a CSR with this CA (or self-signs when selfSign). */
  sign(csr: string, out: string, ext: string, from: Date, to: Date, selfSign = false) {
    const args = ['ca', '-batch', '-config', this.configPath, '-in', csr, '-out', out];
    args.push('-notext', '-rand_serial', '-preserveDN', '-extfile', ext, '-extensions', 'ext');
    args.push('-startdate', caTime(from), '-enddate', caTime(to));
    if (selfSign) args.push('-selfsign', '-keyfile', this.keyPath);
    return this.locked(() => ossl(...args));
  }

  /** Directory layout, config and key; the certificate comes from the caller. */
  async init(): Promise<string> {
    await mkdir(join(this.dir, 'newcerts'), { recursive: true });
    await writeFile(join(this.dir, 'index.txt'), '');
    await writeFile(join(this.dir, 'crlnumber'), '01\n');
    await writeFile(this.configPath, caConfig(this.dir));
    await writeFile(join(this.dir, 'ext.cnf'), CA_EXT);
    const csr = join(this.dir, 'req.pem');
    this.keyPem = await keyAndCsr(this.algo, this.keyPath, csr, this.name);
    return csr;
  }

  async loadCert(): Promise<void> {
    this.certPem = await readFile(this.certPath, 'utf8');
    this.fingerprintSha1 = (await certInfo(this.certPath)).fingerprintSha1;
  }

  async issue(opts: LeafOptions): Promise<TestLeaf> {
    const algo = opts.algo ?? this.algo;
    const purpose: Purpose =
      opts.purpose ?? (isRsaTransport(algo) || isEc(algo) ? 'both' : 'signing');
    const usage = keyUsage(algo, purpose);
    const dir = await mkdtemp(join(this.dir, `leaf-${slug(opts.commonName)}-`));
    const p = (f: string) => join(dir, f);
    const san = [
      ...(opts.rfc822Names ?? []).map((n) => `email:${checkName(n)}`),
      ...(opts.dnsNames ?? []).map((n) => `DNS:${checkName(n)}`),
    ];
    const eku = opts.ocspSigning
      ? 'OCSPSigning'
      : opts.ekuEmailProtection === false
        ? 'clientAuth'
        : 'emailProtection';
    const ext = [
      '[ext]',
      'basicConstraints = critical, CA:FALSE',
      `keyUsage = critical, ${opts.ocspSigning ? 'digitalSignature' : usage.join(', ')}`,
      `extendedKeyUsage = ${eku}`,
      ...(san.length > 0 ? [`subjectAltName = ${san.join(', ')}`] : []),
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      ...pointerLines(opts),
      '',
    ].join('\n');
    await writeFile(p('ext.cnf'), ext);
    const keyPem = await keyAndCsr(algo, p('key.pem'), p('req.pem'), opts.commonName);
    const now = Date.now();
    const from = opts.notBefore ?? new Date(now - DAY);
    const to = opts.notAfter ?? new Date(now + 365 * DAY);
    await this.sign(p('req.pem'), p('cert.pem'), p('ext.cnf'), from, to);
    const certPem = await readFile(p('cert.pem'), 'utf8');
    const chainPem = certPem + this.intermediatesPem;
    await writeFile(p('chain.pem'), chainPem);
    const info = await certInfo(p('cert.pem'));
    const rootPem = await readFile(this.rootCertPath, 'utf8');
    const p12Path = async (passphrase: string, legacy = false): Promise<string> => {
      const out = p(`leaf${legacy ? '-legacy' : ''}-${++this.counter}.p12`);
      await writeFile(p('p12-certs.pem'), this.intermediatesPem + rootPem);
      const args = ['pkcs12', '-export', '-in', p('cert.pem'), '-inkey', p('key.pem')];
      args.push('-certfile', p('p12-certs.pem'), '-name', opts.commonName);
      // env: keeps the passphrase out of argv; -legacy loads the legacy provider.
      args.push('-passout', 'env:DOMSEC_P12_PASS', '-out', out);
      if (legacy) args.push('-legacy');
      await runToolOk('openssl', args, { env: { DOMSEC_P12_PASS: passphrase } });
      return out;
    };
    return {
      dir,
      certPem,
      keyPem,
      certPath: p('cert.pem'),
      keyPath: p('key.pem'),
      chainPem,
      chainPath: p('chain.pem'),
      p12Path,
      ...info,
      algo,
      purpose,
    };
  }

  get indexPath() {
    return join(this.dir, 'index.txt');
  }

  async crossCertify(other: TestCa, notAfter?: Date): Promise<string> {
    const now = Date.now();
    const out = join(this.dir, `cross-${slug(other.name)}-${++this.counter}.pem`);
    const from = new Date(now - 365 * DAY);
    const to = notAfter ?? new Date(now + 5 * 365 * DAY);
    await this.sign(join(other.dir, 'req.pem'), out, join(this.dir, 'ext.cnf'), from, to);
    return out;
  }

  async issueIntermediate(
    name: string,
    algo: KeyAlgo = this.algo,
    pointers: CaPointers = {},
  ): Promise<TestCa> {
    const sub = new Ca(await mkdtemp(join(this.dir, `ca-${slug(name)}-`)), name, algo);
    const csr = await sub.init();
    await writeFile(join(sub.dir, 'signed-by-parent.cnf'), caExt(pointers));
    const now = Date.now();
    const [from, to] = [new Date(now - 2 * 365 * DAY), new Date(now + 5 * 365 * DAY)];
    await this.sign(csr, sub.certPath, join(sub.dir, 'signed-by-parent.cnf'), from, to);
    await sub.loadCert();
    sub.rootCertPath = this.rootCertPath;
    sub.intermediatesPem = sub.certPem + this.intermediatesPem;
    return sub;
  }

  async revoke(certPath: string, reason = 'keyCompromise'): Promise<void> {
    const args = ['-config', this.configPath, '-revoke', certPath, '-crl_reason', reason];
    await this.locked(() => ossl('ca', '-batch', ...args));
  }

  async crl(opts: { seconds?: number } = {}): Promise<{ pem: string; path: string }> {
    const path = join(this.dir, `crl-${++this.counter}.pem`);
    const validity = opts.seconds === undefined ? [] : ['-crlsec', String(opts.seconds)];
    await this.locked(() =>
      ossl('ca', '-batch', '-config', this.configPath, '-gencrl', ...validity, '-out', path),
    );
    return { pem: await readFile(path, 'utf8'), path };
  }
}

/** A self-signed root CA in a new directory under dir. */
export async function createTestCa(
  dir: string,
  name: string,
  algo: KeyAlgo = 'rsa-2048',
): Promise<TestCa> {
  const ca = new Ca(await mkdtemp(join(dir, `ca-${slug(name)}-`)), name, algo);
  const csr = await ca.init();
  const now = Date.now();
  // Backdated so that expired test leaves still lie inside the CA's validity
  // (gpgsm's chain model checks that nesting).
  const [from, to] = [new Date(now - 3 * 365 * DAY), new Date(now + 10 * 365 * DAY)];
  await ca.sign(csr, ca.certPath, join(ca.dir, 'ext.cnf'), from, to, true);
  await ca.loadCert();
  ca.rootCertPath = ca.certPath;
  return ca;
}

/**
 * RFC 3183 domain certificates: a signing and an encryption certificate named
 * domain-signing-authority@ / domain-confidentiality-authority@<domain>.
 * Pass ca to share one (slow-to-make) CA between domains of one test file.
 * ed25519 / rsa-pss domains get an ec-p256 / rsa-2048 encryption key, since
 * those key types cannot encrypt with OpenSSL 3.0 CMS.
 */
export async function createDomainPki(
  dir: string,
  domain: string,
  algo: KeyAlgo = 'rsa-2048',
  ca?: TestCa,
): Promise<{ ca: TestCa; signing: TestLeaf; encryption: TestLeaf }> {
  const theCa = ca ?? (await createTestCa(dir, `Domain CA ${domain}`, algo));
  const encAlgo = algo === 'ed25519' ? 'ec-p256' : algo === 'rsa-pss' ? 'rsa-2048' : algo;
  const [signing, encryption] = await Promise.all([
    theCa.issue({
      commonName: `Domain signing authority ${domain}`,
      rfc822Names: [`domain-signing-authority@${domain}`],
      dnsNames: [domain],
      algo,
      purpose: 'signing',
    }),
    theCa.issue({
      commonName: `Domain confidentiality authority ${domain}`,
      rfc822Names: [`domain-confidentiality-authority@${domain}`],
      dnsNames: [domain],
      algo: encAlgo,
      purpose: 'encryption',
    }),
  ]);
  return { ca: theCa, signing, encryption };
}
