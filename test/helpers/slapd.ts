/**
 * A real OpenLDAP slapd on loopback, private to one test: its own slapd.conf
 * (`-f`, so Debian's /etc/ldap/slapd.d is never read), schemas from
 * /etc/ldap/schema, back_mdb from /usr/lib/ldap, the database in a temp dir
 * loaded with slapadd, run in the foreground (`-d 0`) as a child process.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runToolOk } from './openssl.js';
import { freePort } from './ports.js';

export interface LdifEntry {
  readonly dn: string;
  readonly attributes: Readonly<Record<string, readonly (string | Buffer)[]>>;
}

export interface SlapdOptions {
  /** Default dc=example,dc=net; the suffix entry itself is created here. */
  readonly suffix?: string;
  readonly entries: readonly LdifEntry[];
  /** Also listen on ldaps:// with a fresh self-signed certificate for 127.0.0.1. */
  readonly tls?: boolean;
  /** Refuse anonymous operations; this DN (the rootdn) and password may bind. */
  readonly requireBind?: { readonly dn: string; readonly password: string };
  /** A DN (the rootdn) and password that may bind and write; anonymous reads stay allowed. */
  readonly manager?: { readonly dn: string; readonly password: string };
}

export interface TestSlapd {
  readonly port: number;
  readonly suffix: string;
  /** `ldap://127.0.0.1:port/<base>` (base defaults to the suffix). */
  url(base?: string): string;
  /** `ldaps://...`, only with `tls`. */
  ldapsUrl(base?: string): string;
  /** The self-signed server certificate (PEM), to trust it; only with `tls`. */
  readonly certificatePem: string | undefined;
  stop(): Promise<void>;
}

function ldifValue(name: string, value: string | Buffer): string {
  // LDIF (RFC 2849) "SAFE-STRING": anything else goes base64.
  if (typeof value === 'string' && /^[\x21-\x39\x3b\x3d-\x7e][\x20-\x7e]*$/.test(value))
    return `${name}: ${value}`;
  return `${name}:: ${Buffer.from(value).toString('base64')}`;
}

export function toLdif(entries: readonly LdifEntry[]): string {
  return entries
    .map((e) =>
      [
        ldifValue('dn', e.dn),
        ...Object.entries(e.attributes).flatMap(([n, vs]) => vs.map((v) => ldifValue(n, v))),
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

function suffixEntry(suffix: string): LdifEntry {
  const dc = /^dc=([^,]+)/i.exec(suffix)?.[1];
  if (!dc) throw new Error(`startSlapd: the suffix must start with dc=, not ${suffix}`);
  return {
    dn: suffix,
    attributes: { objectClass: ['dcObject', 'organization'], dc: [dc], o: [dc] },
  };
}

function config(dir: string, suffix: string, opts: SlapdOptions): string {
  const lines = [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
  ];
  if (opts.tls) {
    lines.push(`TLSCertificateFile ${join(dir, 'server.crt')}`);
    lines.push(`TLSCertificateKeyFile ${join(dir, 'server.key')}`);
  }
  if (opts.requireBind) lines.push('disallow bind_anon', 'require authc');
  lines.push('database mdb', `suffix "${suffix}"`, `directory ${join(dir, 'db')}`);
  const root = opts.requireBind ?? opts.manager;
  if (root) lines.push(`rootdn "${root.dn}"`, `rootpw ${root.password}`);
  return `${lines.join('\n')}\n`;
}

/** An anonymous LDAPv3 bind; true once a BER answer comes back: slapd serves requests. */
function answersBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => s.write(Buffer.from('300c020101600702010304008000', 'hex')));
    s.once('data', (d: Buffer) => done(d[0] === 0x30));
    s.once('error', () => done(false));
  });
}

async function selfSignedCertificate(dir: string): Promise<string> {
  await runToolOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, 'server.key'),
    '-out',
    join(dir, 'server.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return readFile(join(dir, 'server.crt'), 'utf8');
}

export async function startSlapd(opts: SlapdOptions): Promise<TestSlapd> {
  const suffix = opts.suffix ?? 'dc=example,dc=net';
  const dir = await mkdtemp(join(tmpdir(), 'domsec-slapd-'));
  try {
    await mkdir(join(dir, 'db'));
    const certificatePem = opts.tls ? await selfSignedCertificate(dir) : undefined;
    await writeFile(join(dir, 'slapd.conf'), config(dir, suffix, opts));
    await writeFile(join(dir, 'data.ldif'), toLdif([suffixEntry(suffix), ...opts.entries]));
    await runToolOk('slapadd', ['-q', '-f', join(dir, 'slapd.conf'), '-l', join(dir, 'data.ldif')]);
    // freePort races with other tests taking the port: a slapd that cannot bind exits, so retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const tlsPort = opts.tls ? await freePort() : 0;
      const listeners = [`ldap://127.0.0.1:${port}/`];
      if (opts.tls) listeners.push(`ldaps://127.0.0.1:${tlsPort}/`);
      const child = spawn(
        'slapd',
        ['-f', join(dir, 'slapd.conf'), '-h', listeners.join(' '), '-d', '0'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const spawnError = new Promise<Error>((r) => child.once('error', r));
      const deadline = Date.now() + 10_000;
      let ready = false;
      while (!ready && child.exitCode === null && Date.now() < deadline) {
        const failed = await Promise.race([spawnError, sleep(0).then(() => undefined)]);
        if (failed) throw new Error(`cannot run slapd (is it installed?): ${failed.message}`);
        ready = await answersBind(port);
        if (!ready) await sleep(20);
      }
      if (ready) return handle(child, exited, dir, suffix, port, tlsPort, certificatePem);
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      if (attempt >= 3) throw new Error(`slapd did not start on port ${port}:\n${stderr}`);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function handle(
  child: ChildProcess,
  exited: Promise<void>,
  dir: string,
  suffix: string,
  port: number,
  tlsPort: number,
  certificatePem: string | undefined,
): TestSlapd {
  const url = (scheme: string, p: number, base: string) =>
    `${scheme}://127.0.0.1:${p}/${encodeURIComponent(base).replace(/%2C/gi, ',').replace(/%3D/gi, '=')}`;
  return {
    port,
    suffix,
    certificatePem,
    url: (base = suffix) => url('ldap', port, base),
    ldapsUrl: (base = suffix) => {
      if (!tlsPort) throw new Error('this slapd was started without tls');
      return url('ldaps', tlsPort, base);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
