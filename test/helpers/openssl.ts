// Drives the `openssl cms` / `openssl smime` command line as the "other"
// S/MIME implementation in interop tests. Nothing here may import our own CMS
// code: a bug shared by both sides would make the interop tests pass blindly.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ToolResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface ToolOptions {
  input?: Buffer | string;
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs a program without a shell; resolves with its exit code whatever it is. */
export function runTool(cmd: string, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    // LC_ALL=C keeps tool messages in English so tests can match on them.
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    // A tool that exits before reading all of stdin makes the write fail with
    // EPIPE; its exit code tells the real story, so that error is not ours.
    child.stdin.on('error', () => {});
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.end(opts.input ?? '');
  });
}

/** Like runTool but throws an Error carrying the tool's stderr on a non-zero exit. */
export async function runToolOk(
  cmd: string,
  args: string[],
  opts: ToolOptions = {},
): Promise<ToolResult> {
  const r = await runTool(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  }
  return r;
}

/** Gives fn a fresh temp directory and removes it afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-ossl-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readIfExists(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    return Buffer.alloc(0);
  }
}

export interface ToolOutcome {
  ok: boolean;
  content: Buffer;
  stderr: string;
}

export async function opensslVersion(): Promise<string> {
  return (await runToolOk('openssl', ['version'])).stdout.toString('utf8').trim();
}

/**
 * Verifies a whole S/MIME message (multipart/signed or pkcs7-mime signed-data).
 * A failed verification is a result (ok=false), not an exception.
 */
export function cmsVerify(
  smimeMessage: Buffer,
  opts: { caFile: string; purpose?: string; noVerify?: boolean },
): Promise<ToolOutcome> {
  return withTempDir(async (dir) => {
    const inPath = join(dir, 'in.eml');
    const outPath = join(dir, 'content.bin');
    await writeFile(inPath, smimeMessage);
    const args = ['cms', '-verify', '-in', inPath, '-inform', 'SMIME', '-out', outPath];
    args.push('-CAfile', opts.caFile);
    if (opts.purpose) args.push('-purpose', opts.purpose);
    if (opts.noVerify) args.push('-noverify');
    const r = await runTool('openssl', args);
    return { ok: r.code === 0, content: await readIfExists(outPath), stderr: r.stderr };
  });
}

/** Decrypts a whole S/MIME message (EnvelopedData or AuthEnvelopedData). */
export function cmsDecrypt(
  smimeMessage: Buffer,
  recip: { certPath: string; keyPath: string },
): Promise<ToolOutcome> {
  return withTempDir(async (dir) => {
    const inPath = join(dir, 'in.eml');
    const outPath = join(dir, 'content.bin');
    await writeFile(inPath, smimeMessage);
    const r = await runTool('openssl', [
      'cms',
      '-decrypt',
      '-in',
      inPath,
      '-inform',
      'SMIME',
      '-recip',
      recip.certPath,
      '-inkey',
      recip.keyPath,
      '-out',
      outPath,
    ]);
    return { ok: r.code === 0, content: await readIfExists(outPath), stderr: r.stderr };
  });
}

/** Human-readable dump of a DER CMS ContentInfo (`openssl cms -cmsout -print`). */
export function cmsPrint(der: Buffer): Promise<string> {
  return withTempDir(async (dir) => {
    const inPath = join(dir, 'in.der');
    await writeFile(inPath, der);
    const r = await runToolOk('openssl', [
      'cms',
      '-cmsout',
      '-print',
      '-inform',
      'DER',
      '-in',
      inPath,
    ]);
    return r.stdout.toString('utf8');
  });
}

/** The DER CMS blob of an S/MIME message (pkcs7-mime body or multipart/signed signature). */
export function smimeToDer(message: Buffer): Promise<Buffer> {
  return withTempDir(async (dir) => {
    const inPath = join(dir, 'in.eml');
    const outPath = join(dir, 'out.der');
    await writeFile(inPath, message);
    await runToolOk('openssl', [
      'cms',
      '-cmsout',
      '-inform',
      'SMIME',
      '-outform',
      'DER',
      '-in',
      inPath,
      '-out',
      outPath,
    ]);
    return readFile(outPath);
  });
}

export interface SignOptions {
  /** multipart/signed (default) or opaque application/pkcs7-mime signed-data. */
  detached?: boolean;
  /** -stream: BER indefinite-length encoding, as streaming signers produce. */
  stream?: boolean;
  /** -binary: sign the bytes as given instead of canonicalising LF to CRLF. */
  binary?: boolean;
  /** `openssl smime`: x-pkcs7 media type names, no -keyopt. */
  legacySmime?: boolean;
  /** Ed25519 cannot be used at all: OpenSSL 3.0 CMS has no digest for it (openssl#11915). */
  md?: string;
  /** e.g. ['rsa_padding_mode:pss'] (automatic for signer.algo 'rsa-pss'); `openssl cms` only. */
  keyopt?: string[];
  /** -crlfeol: CRLF MIME framing too (by default openssl frames with bare LF). */
  crlfEol?: boolean;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const pemBody = (pem: string): string => pem.replace(/-----[A-Z ]+-----|\s/g, '');

/**
 * OpenSSL 3.0 fails with "certificate already present" when -certfile repeats
 * the signer certificate, and our chain files start with the leaf: drop it.
 */
async function extraCerts(chainPath: string, signerCertPath: string, dir: string): Promise<string> {
  const signer = (await readFile(signerCertPath, 'utf8')).match(PEM_CERT)?.[0] ?? '';
  const others = ((await readFile(chainPath, 'utf8')).match(PEM_CERT) ?? []).filter(
    (c) => pemBody(c) !== pemBody(signer),
  );
  const path = join(dir, 'extra-certs.pem');
  await writeFile(path, others.map((c) => `${c}\n`).join(''));
  return others.length > 0 ? path : '';
}

/** Signs content; returns the whole S/MIME message exactly as openssl writes it. */
export async function cmsSign(
  content: Buffer,
  signer: { certPath: string; keyPath: string; chainPath?: string; algo?: string },
  opts: SignOptions = {},
): Promise<Buffer> {
  // OpenSSL 3.0 signs with an RSASSA-PSS key as if it were PKCS#1 v1.5
  // (signatureAlgorithm rsaEncryption) and then cannot verify its own output.
  const keyopt = opts.keyopt ?? (signer.algo === 'rsa-pss' ? ['rsa_padding_mode:pss'] : []);
  if (opts.legacySmime && keyopt.length > 0) {
    throw new Error('openssl smime has no -keyopt (needed for PSS); use openssl cms');
  }
  return withTempDir(async (dir) => {
    const inPath = join(dir, 'content.bin');
    const outPath = join(dir, 'out.eml');
    await writeFile(inPath, content);
    const args = [opts.legacySmime ? 'smime' : 'cms', '-sign', '-in', inPath, '-out', outPath];
    args.push('-signer', signer.certPath, '-inkey', signer.keyPath);
    if (signer.chainPath) {
      const certs = await extraCerts(signer.chainPath, signer.certPath, dir);
      if (certs) args.push('-certfile', certs);
    }
    if (opts.md) args.push('-md', opts.md);
    if (opts.detached === false) args.push('-nodetach');
    if (opts.stream) args.push('-stream');
    if (opts.binary) args.push('-binary');
    if (opts.crlfEol) args.push('-crlfeol');
    for (const k of keyopt) args.push('-keyopt', k);
    await runToolOk('openssl', args);
    return readFile(outPath);
  });
}

export interface EncryptOptions {
  /** openssl cipher name, with or without the dash; default aes-256-cbc. GCM => AuthEnvelopedData. */
  cipher?: string;
  /** RSAES-OAEP key transport for every recipient (RSA recipients only). */
  oaep?: boolean;
  stream?: boolean;
  binary?: boolean;
  /** `openssl smime`: x-pkcs7 names, CBC only, no OAEP. */
  legacySmime?: boolean;
  crlfEol?: boolean;
}

/** Encrypts content; returns the whole S/MIME message exactly as openssl writes it. */
export async function cmsEncrypt(
  content: Buffer,
  recipientCertPaths: string[],
  opts: EncryptOptions = {},
): Promise<Buffer> {
  const cipher = (opts.cipher ?? 'aes-256-cbc').replace(/^-/, '');
  if (opts.legacySmime && (opts.oaep || /gcm|ccm/i.test(cipher))) {
    throw new Error('openssl smime supports neither OAEP nor AEAD ciphers; use openssl cms');
  }
  if (recipientCertPaths.length === 0) throw new Error('cmsEncrypt needs a recipient');
  return withTempDir(async (dir) => {
    const inPath = join(dir, 'content.bin');
    const outPath = join(dir, 'out.eml');
    await writeFile(inPath, content);
    const args = [opts.legacySmime ? 'smime' : 'cms', '-encrypt', '-in', inPath, '-out', outPath];
    args.push(`-${cipher}`);
    if (opts.stream) args.push('-stream');
    if (opts.binary) args.push('-binary');
    if (opts.crlfEol) args.push('-crlfeol');
    if (opts.legacySmime) {
      // openssl smime takes recipients as trailing positional arguments.
      args.push(...recipientCertPaths);
    } else {
      for (const cert of recipientCertPaths) {
        // -keyopt applies to the -recip just before it, so repeat it per recipient.
        args.push('-recip', cert);
        if (opts.oaep) args.push('-keyopt', 'rsa_padding_mode:oaep');
      }
    }
    await runToolOk('openssl', args);
    return readFile(outPath);
  });
}
