/**
 * The gateway through a real Postfix, beside OpenDKIM signing as the peer
 * (Debian `opendkim`, RSA-2048): no milter; OpenDKIM; domsec sign only;
 * domsec sign+encrypt; domsec inbound decrypt+verify. Interleaved rounds,
 * median, ratios to OpenDKIM. Needs `apt-get install opendkim`.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { certificatePem, generateDomainPki, keyPem } from '../src/pki/keygen.js';
import { writeDomainPki } from '../src/pki/keygen-files.js';
import { transformOutbound } from '../src/smime/outbound.js';
import { startServe } from '../test/helpers/cli.js';
import { acceptsConnections, freePort } from '../test/helpers/ports.js';
import { type PostfixInstance, startPostfix } from '../test/helpers/postfix.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../test/helpers/smtp-sink.js';
import { median, smtpSource } from './postfix-bench.js';
import { makeMessage } from './smime-bench.js';

export interface GatewayRow {
  readonly size: number;
  readonly variant: string;
  readonly rates: number[];
  readonly median: number;
  readonly ratioToOpenDkim: number;
}

interface Variant {
  readonly name: string;
  /** What a delivered message must show, so the bench measures the work it claims to. */
  readonly expect: (m: SinkMessage) => boolean;
  readonly postfix: PostfixInstance;
  readonly to: string;
  /** A pre-formatted message for smtp-source -F (inbound), else generated of the size. */
  readonly file?: (size: number) => string;
  stop(): Promise<void>;
}

/** How Postfix reaches the milters: TCP on loopback, or unix sockets (Debian's default for OpenDKIM). */
export type MilterTransport = 'inet' | 'unix';

async function startOpenDkim(
  dir: string,
  key: string,
  transport: MilterTransport,
): Promise<{ address: string; stop(): Promise<void> }> {
  const port = await freePort();
  // OpenDKIM makes its socket after dropping to its user: in a directory of its own.
  const socketDir = join(dir, 'run');
  const socketPath = join(socketDir, 'opendkim.sock');
  const keyPath = join(dir, 'dkim.key');
  writeFileSync(keyPath, key, { mode: 0o600 });
  // OpenDKIM drops to its own user and insists the key is readable by it alone.
  const uid = Number(execFileSync('id', ['-u', 'opendkim']).toString());
  const gid = Number(execFileSync('id', ['-g', 'opendkim']).toString());
  chownSync(keyPath, uid, gid);
  if (transport === 'unix') {
    mkdirSync(socketDir, { mode: 0o755 });
    chownSync(socketDir, uid, gid);
  }
  const conf = join(dir, 'opendkim.conf');
  writeFileSync(
    conf,
    [
      'Syslog no',
      'Mode s',
      'Domain example.org',
      'Selector bench',
      `KeyFile ${keyPath}`,
      'Canonicalization relaxed/simple',
      'InternalHosts 127.0.0.1',
      'UserID opendkim',
      // Its socket is made as user opendkim; Postfix's smtpd must be able to connect to it.
      'UMask 000',
      transport === 'unix' ? `Socket local:${socketPath}` : `Socket inet:${port}@127.0.0.1`,
      `PidFile ${join(dir, 'opendkim.pid')}`,
    ].join('\n'),
  );
  chmodSync(dir, 0o755);
  const child: ChildProcess = spawn('opendkim', ['-f', '-x', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = transport === 'unix' ? existsSync(socketPath) : await acceptsConnections(port);
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`opendkim did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    address: transport === 'unix' ? `unix:${socketPath}` : `inet:127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function gatewayBenchmarks(
  o: { messages: number; rounds: number; sizes: number[]; transport: MilterTransport },
  log: (s: string) => void,
): Promise<GatewayRow[]> {
  if (!existsSync('/usr/sbin/opendkim'))
    throw new Error('OpenDKIM is not installed: apt-get install opendkim');
  const dir = mkdtempSync(join(tmpdir(), 'domsec-gwbench-'));
  chmodSync(dir, 0o755);
  const sink: SmtpSink = await startSmtpSink();
  const [org, net] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
  ]);
  await writeDomainPki(join(dir, 'org'), 'example.org', org);
  await writeDomainPki(join(dir, 'net'), 'example.net', net);
  writeFileSync(join(dir, 'partner.pem'), certificatePem(net.encryption.certificate));
  const stops: (() => Promise<void>)[] = [];
  const mk = async (
    name: string,
    milter: string | undefined,
    to: string,
    expect: (m: SinkMessage) => boolean,
    file?: (size: number) => string,
  ): Promise<Variant> => {
    const postfix = await startPostfix({
      relayPort: sink.port,
      ...(milter ? { milter } : {}),
      mainCf: { default_process_limit: '200' },
    });
    return { name, postfix, to, expect, ...(file ? { file } : {}), stop: () => postfix.stop() };
  };
  const type = (m: SinkMessage) => m.header('content-type') ?? '';
  try {
    // OpenDKIM refuses a configuration or key under a world-writable directory such as /tmp.
    const dkimDir = mkdtempSync('/var/lib/domsec-dkim-');
    const dkim = await startOpenDkim(dkimDir, keyPem(org.signing.privateKey), o.transport);
    stops.push(async () => {
      await dkim.stop();
      rmSync(dkimDir, { recursive: true, force: true });
    });
    const postfixGid = Number(execFileSync('id', ['-g', 'postfix']).toString());
    /** A domsec milter on the chosen transport; a unix socket is given to Postfix's group. */
    const serveOn = async (name: string, env: Record<string, string>) => {
      if (o.transport === 'inet') return startServe(env);
      const path = join(dir, `${name}.sock`);
      const serve = await startServe({ ...env, DOMSEC_LISTEN: `unix:${path}` });
      chownSync(path, 0, postfixGid);
      return { stop: serve.stop, address: `unix:${path}` };
    };
    const outbound = await serveOn('outbound', {
      DOMSEC_LOG_LEVEL: 'warn',
      DOMSEC_LOCAL_DOMAINS: 'example.org',
      DOMSEC_KEYS_DIR: join(dir, 'org'),
      DOMSEC_PARTNER_CERTS: join(dir, 'partner.pem'),
    });
    stops.push(async () => void (await outbound.stop()));
    const inbound = await serveOn('inbound', {
      DOMSEC_LOG_LEVEL: 'warn',
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: join(dir, 'org/ca/example.org.ca.crt.pem'),
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
    });
    stops.push(async () => void (await inbound.stop()));
    const protectedFile = new Map<number, string>();
    const signer = {
      certificate: org.signing.certificate,
      chain: [],
      privateKey: org.signing.privateKey,
    };
    for (const size of o.sizes) {
      const r = await transformOutbound(makeMessage(size), {
        signer,
        recipients: [{ certificate: net.encryption.certificate }],
        options: { sign: true, encrypt: true },
      });
      if (!r.ok) throw new Error('bench setup');
      const path = join(dir, `protected-${size}.eml`);
      // smtp-source -F appends CRLF to each line it reads: give it LF lines.
      writeFileSync(path, r.message.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
      protectedFile.set(size, path);
    }
    const variants = [
      await mk('no milter', undefined, 'bob@example.net', (m) => !type(m).includes('pkcs7')),
      await mk(
        'OpenDKIM signing (RSA-2048)',
        dkim.address,
        'bob@example.net',
        (m) => m.header('dkim-signature') !== undefined,
      ),
      await mk('domsec sign only', outbound.address, 'dave@example.info', (m) =>
        type(m).startsWith('multipart/signed'),
      ),
      await mk('domsec sign+encrypt', outbound.address, 'bob@example.net', (m) =>
        type(m).includes('enveloped-data'),
      ),
      await mk(
        'domsec inbound decrypt+verify',
        inbound.address,
        'bob@example.net',
        (m) => /smime=pass/.test(m.header('authentication-results') ?? ''),
        (size) => protectedFile.get(size)!,
      ),
    ];
    for (const v of variants) stops.unshift(v.stop);
    const rows: GatewayRow[] = [];
    for (const size of o.sizes) {
      const rates = new Map(variants.map((v) => [v.name, [] as number[]]));
      const run = async (v: Variant, n: number) => {
        sink.messages.length = 0;
        const t0 = performance.now();
        await smtpSource(v.postfix.smtpPort, n, 20, size, v.to, v.file?.(size));
        const got = await sink.waitFor(n, 600_000);
        if (!v.expect(got[0]!))
          throw new Error(`${v.name}: delivered mail does not show the expected processing`);
        sink.messages.length = 0;
        return n / ((performance.now() - t0) / 1000);
      };
      // Warm-up: a milter in service is long past V8's optimising compiler; measured here,
      // 200 messages left TurboFan at 15 % of the milter's CPU (OpenDKIM, in C, has no warm-up).
      for (const v of variants) await run(v, Math.min(1000, o.messages));
      for (let round = 0; round < o.rounds; round++) {
        for (const v of variants.map((_, i) => variants[(i + round) % variants.length]!)) {
          const rate = await run(v, o.messages);
          rates.get(v.name)!.push(rate);
          log(`  ${size} B round ${round + 1} ${v.name}: ${rate.toFixed(0)} msgs/s`);
        }
      }
      const dkimRate = median(rates.get('OpenDKIM signing (RSA-2048)')!);
      for (const v of variants) {
        const m = median(rates.get(v.name)!);
        rows.push({
          size,
          variant: v.name,
          rates: rates.get(v.name)!,
          median: m,
          ratioToOpenDkim: m / dkimRate,
        });
      }
    }
    return rows;
  } finally {
    for (const s of stops) await s().catch(() => {});
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
