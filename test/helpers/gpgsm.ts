// GnuPG's gpgsm as a second, independent S/MIME implementation for interop
// tests. gpgsm reads and writes raw CMS only, so this file carries its own
// small MIME splitter/wrapper (deliberately not src/: no shared bugs).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool, runToolOk, type ToolResult, withTempDir } from './openssl.js';
import type { TestLeaf } from './pki.js';

export interface GpgsmVerifyResult {
  ok: boolean;
  /** The [GNUPG:] status lines (--status-fd 1). */
  status: string;
  /** SHA-1 fingerprints from VALIDSIG lines. */
  signers: string[];
  /** The signed content for opaque signed-data, empty for multipart/signed. */
  content: Buffer;
  stderr: string;
}

export interface GpgsmDecryptResult {
  ok: boolean;
  content: Buffer;
  status: string;
  stderr: string;
}

// SIG_CREATED carries libgcrypt hash ids; micalg names are from RFC 5751.
const MICALG: Record<string, string> = {
  '2': 'sha-1',
  '8': 'sha-256',
  '9': 'sha-384',
  '10': 'sha-512',
};
// gpg-agent's socket lives in the home directory here (no /run/user/<uid>),
// and a Unix socket path must fit in 108 bytes.
const MAX_HOME_LENGTH = 80;

async function sha1Fingerprint(certPath: string): Promise<string> {
  const args = ['x509', '-in', certPath, '-noout', '-fingerprint', '-sha1'];
  const r = await runToolOk('openssl', args);
  return (r.stdout.toString('utf8').split('=')[1] ?? '').trim().replace(/:/g, '');
}

export class Gpgsm {
  // Keybox writes and the agent are shared state: one gpgsm run at a time.
  private tail: Promise<unknown> = Promise.resolve();
  private readonly keysImported = new Set<string>();

  private constructor(
    readonly home: string,
    readonly passphrase: string,
  ) {}

  static async create(dir: string, trustedCaCertPaths: string[]): Promise<Gpgsm> {
    const home = await mkdtemp(join(dir, 'gpgsm-')); // mkdtemp gives 0700, as gpg wants
    if (home.length > MAX_HOME_LENGTH) throw new Error(`GNUPGHOME path too long: ${home}`);
    // no-allow-mark-trusted: only trustlist.txt decides; the agent never offers to trust a root.
    await writeFile(
      join(home, 'gpg-agent.conf'),
      'allow-loopback-pinentry\ndisable-scdaemon\nno-allow-mark-trusted\n',
    );
    // disable-dirmngr: no CRL/OCSP/LDAP look-ups, so no network traffic at all.
    await writeFile(
      join(home, 'gpgsm.conf'),
      'disable-crl-checks\ndisable-policy-checks\ndisable-dirmngr\n',
    );
    const trust = await Promise.all(trustedCaCertPaths.map(sha1Fingerprint));
    await writeFile(join(home, 'trustlist.txt'), trust.map((f) => `${f} S relax\n`).join(''));
    const g = new Gpgsm(home, `gpgsm-${randomBytes(6).toString('hex')}`);
    for (const path of trustedCaCertPaths) await g.importCert(path);
    return g;
  }

  /** Runs gpgsm in this home; the passphrase goes to stdin for loopback pinentry. */
  run(args: string[]): Promise<ToolResult> {
    const full = ['--homedir', this.home, '--batch', '--status-fd', '1'];
    full.push('--pinentry-mode', 'loopback', '--passphrase-fd', '0', ...args);
    const go = this.tail.then(() => runTool('gpgsm', full, { input: `${this.passphrase}\n` }));
    this.tail = go.catch(() => {});
    return go;
  }

  private async runOk(args: string[]): Promise<ToolResult> {
    const r = await this.run(args);
    if (r.code !== 0) {
      throw new Error(`gpgsm ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
    }
    return r;
  }

  async importCert(path: string): Promise<void> {
    await this.runOk(['--import', path]);
  }

  /** Imports the leaf's key and certificates through a legacy PKCS#12. */
  async importKey(leaf: TestLeaf): Promise<void> {
    // gpgsm 2.2 now and then fails to decrypt the key bag of a valid legacy
    // PKCS#12 ("data error at shrouded_key_bag.decrypted-text"; openssl reads
    // the same file): a fresh export (new salt) is tried before giving up.
    let p12 = '';
    let r: Awaited<ReturnType<typeof this.runOk>> | undefined;
    for (let attempt = 0; attempt < 3 && !r; attempt++) {
      p12 = await leaf.p12Path(this.passphrase, true);
      try {
        r = await this.runOk(['--import', p12]);
      } catch (err) {
        if (attempt === 2 || !String(err).includes('shrouded_key_bag')) throw err;
      }
    }
    if (!r) throw new Error(`gpgsm could not import ${p12}`);
    // IMPORT_RES fields 11/12: secret keys imported / unchanged.
    const res =
      r.stdout
        .toString('utf8')
        .match(/IMPORT_RES (.*)/)?.[1]
        ?.split(' ') ?? [];
    if (Number(res[10] ?? 0) + Number(res[11] ?? 0) < 1) {
      throw new Error(`gpgsm imported no secret key from ${p12}:\n${r.stderr}${r.stdout}`);
    }
    this.keysImported.add(leaf.fingerprintSha1);
  }

  /** Verifies a whole S/MIME message (multipart/signed or pkcs7-mime signed-data). */
  verify(smimeMessage: Buffer): Promise<GpgsmVerifyResult> {
    return withTempDir(async (dir) => {
      const parts = splitSmime(smimeMessage);
      const sig = join(dir, 'sig.der');
      const out = join(dir, 'content.bin');
      await writeFile(sig, parts.cms);
      let r: ToolResult;
      if (parts.signedContent) {
        await writeFile(join(dir, 'data.bin'), parts.signedContent);
        r = await this.run(['--verify', sig, join(dir, 'data.bin')]);
      } else {
        r = await this.run(['--output', out, '--verify', sig]);
      }
      const status = r.stdout.toString('utf8');
      const has = (kw: string) => new RegExp(`^\\[GNUPG:\\] ${kw}\\b`, 'm').test(status);
      const signers = [...status.matchAll(/^\[GNUPG:\] VALIDSIG (\S+)/gm)].map((m) => m[1] ?? '');
      const ok =
        r.code === 0 &&
        has('GOODSIG') &&
        signers.length > 0 &&
        ![
          'BADSIG',
          'ERRSIG',
          'EXPSIG',
          'EXPKEYSIG',
          'REVKEYSIG',
          'TRUST_NEVER',
          'TRUST_UNDEFINED',
        ].some(has);
      const content = parts.signedContent
        ? Buffer.alloc(0)
        : await readFile(out).catch(() => Buffer.alloc(0));
      return { ok, status, signers, content, stderr: r.stderr };
    });
  }

  /** Decrypts a whole S/MIME enveloped-data message. gpgsm 2.2: CBC + RSA v1.5 only. */
  decrypt(smimeMessage: Buffer): Promise<GpgsmDecryptResult> {
    return withTempDir(async (dir) => {
      const { cms } = splitSmime(smimeMessage);
      await writeFile(join(dir, 'in.der'), cms);
      const r = await this.run([
        '--output',
        join(dir, 'out.bin'),
        '--decrypt',
        join(dir, 'in.der'),
      ]);
      const status = r.stdout.toString('utf8');
      const ok = r.code === 0 && /^\[GNUPG:\] DECRYPTION_OKAY/m.test(status);
      const content = await readFile(join(dir, 'out.bin')).catch(() => Buffer.alloc(0));
      return { ok, content: ok ? content : Buffer.alloc(0), status, stderr: r.stderr };
    });
  }

  /** Signs content (a CRLF MIME entity); returns a whole S/MIME message with CRLF. */
  async sign(content: Buffer, signer: string | TestLeaf, detached = true): Promise<Buffer> {
    if (typeof signer !== 'string' && !this.keysImported.has(signer.fingerprintSha1)) {
      await this.importKey(signer);
    }
    const fpr = typeof signer === 'string' ? signer : signer.fingerprintSha1;
    return withTempDir(async (dir) => {
      await writeFile(join(dir, 'in.bin'), content);
      const out = join(dir, 'out.der');
      const r = await this.runOk([
        '--local-user',
        fpr,
        '--output',
        out,
        detached ? '--detach-sign' : '--sign',
        join(dir, 'in.bin'),
      ]);
      const der = await readFile(out);
      if (!detached) return pkcs7Mime('signed-data', der);
      // SIG_CREATED <type> <pk algo> <hash algo> ...
      const hash = r.stdout.toString('utf8').match(/SIG_CREATED \S+ \S+ (\d+)/)?.[1] ?? '';
      const micalg = MICALG[hash];
      if (!micalg) throw new Error(`unexpected gpgsm hash algorithm ${hash}:\n${r.stdout}`);
      return multipartSigned(content, der, micalg);
    });
  }

  /** Encrypts to the given certificates; returns a whole S/MIME message with CRLF. */
  async encrypt(
    content: Buffer,
    recipientCertPath: string | string[],
    opts: { cipher?: 'AES' | 'AES192' | 'AES256' } = {},
  ): Promise<Buffer> {
    const paths = typeof recipientCertPath === 'string' ? [recipientCertPath] : recipientCertPath;
    const recipients: string[] = [];
    for (const path of paths) {
      await this.importCert(path);
      recipients.push('--recipient', await sha1Fingerprint(path));
    }
    return withTempDir(async (dir) => {
      await writeFile(join(dir, 'in.bin'), content);
      const out = join(dir, 'out.der');
      const cipher = opts.cipher ? ['--cipher-algo', opts.cipher] : [];
      await this.runOk([
        ...cipher,
        ...recipients,
        '--output',
        out,
        '--encrypt',
        join(dir, 'in.bin'),
      ]);
      return pkcs7Mime('enveloped-data', await readFile(out));
    });
  }

  async close(): Promise<void> {
    await runTool('gpgconf', ['--homedir', this.home, '--kill', 'all']);
    await rm(this.home, { recursive: true, force: true });
  }
}

// ---- minimal MIME handling (only what openssl and gpgsm output needs) ----

const base64Lines = (der: Buffer) =>
  (der.toString('base64').match(/.{1,64}/g) ?? []).map((l) => `${l}\r\n`).join('');

function pkcs7Mime(smimeType: string, der: Buffer): Buffer {
  return Buffer.from(
    'MIME-Version: 1.0\r\n' +
      `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"\r\n` +
      'Content-Transfer-Encoding: base64\r\n' +
      'Content-Disposition: attachment; filename="smime.p7m"\r\n' +
      '\r\n' +
      base64Lines(der),
  );
}

function multipartSigned(content: Buffer, sig: Buffer, micalg: string): Buffer {
  const b = `----gpgsm-${randomBytes(12).toString('hex')}`;
  return Buffer.concat([
    Buffer.from(
      'MIME-Version: 1.0\r\n' +
        `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=${micalg}; boundary="${b}"\r\n` +
        '\r\nThis is an S/MIME signed message\r\n\r\n' +
        `--${b}\r\n`,
    ),
    // The CRLF before the next delimiter belongs to the delimiter (RFC 2046).
    content,
    Buffer.from(
      `\r\n--${b}\r\n` +
        'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n' +
        'Content-Transfer-Encoding: base64\r\n' +
        'Content-Disposition: attachment; filename="smime.p7s"\r\n' +
        '\r\n' +
        base64Lines(sig) +
        `\r\n--${b}--\r\n`,
    ),
  ]);
}

/** Splits header and body at the first empty line (CRLF or bare LF: openssl frames with LF). */
function splitEntity(buf: Buffer): { headers: string; body: Buffer } {
  const m = /\r?\n\r?\n/.exec(buf.toString('latin1'));
  if (!m) return { headers: buf.toString('latin1'), body: Buffer.alloc(0) };
  return {
    headers: buf.subarray(0, m.index).toString('latin1'),
    body: buf.subarray(m.index + m[0].length),
  };
}

function header(headers: string, name: string): string {
  const unfolded = headers.replace(/\r?\n[ \t]+/g, ' ');
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(unfolded);
  return m?.[1]?.trim() ?? '';
}

function decodeBody(headers: string, body: Buffer): Buffer {
  const cte = header(headers, 'content-transfer-encoding').toLowerCase();
  // Buffer.from(..., 'base64') skips line breaks and other whitespace.
  return cte === 'base64' ? Buffer.from(body.toString('latin1'), 'base64') : body;
}

/**
 * From an S/MIME message, the CMS DER and, for multipart/signed, the exact
 * bytes of the first part (what the signature covers).
 */
export function splitSmime(message: Buffer): { cms: Buffer; signedContent?: Buffer } {
  const { headers, body } = splitEntity(message);
  const ctype = header(headers, 'content-type');
  if (!/^multipart\/signed\b/i.test(ctype)) return { cms: decodeBody(headers, body) };
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(ctype);
  const b = boundary?.[1] ?? boundary?.[2];
  if (!b) throw new Error(`multipart/signed without boundary: ${ctype}`);
  const text = body.toString('latin1'); // latin1 keeps byte offsets equal to string offsets
  const delim = new RegExp(
    `(^|\\n)--${b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(--)?[ \\t]*\\r?\\n?`,
    'g',
  );
  const marks = [...text.matchAll(delim)];
  if (marks.length < 3) throw new Error('multipart/signed needs two parts and a close delimiter');
  const part = (i: number): Buffer => {
    const from = (marks[i]?.index ?? 0) + (marks[i]?.[0].length ?? 0);
    // The match starts at the LF ending the previous line; drop a CR before it too.
    let to = marks[i + 1]?.index ?? 0;
    if (text[to - 1] === '\r') to -= 1;
    return body.subarray(from, to);
  };
  const sigPart = splitEntity(part(1));
  return { cms: decodeBody(sigPart.headers, sigPart.body), signedContent: part(0) };
}
