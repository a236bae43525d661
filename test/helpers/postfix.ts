import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

export interface PostfixOptions {
  /** Where Postfix delivers everything: smtp to [127.0.0.1]:relayPort. */
  relayPort: number;
  /** e.g. 'inet:127.0.0.1:12345'; sets smtpd_milters and non_smtpd_milters. */
  milter?: string;
  /** Default 'tempfail', set explicitly because Postfix 3.11 changed the default. */
  milterDefaultAction?: 'accept' | 'tempfail' | 'reject';
  milterMacros?: Partial<
    Record<'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'eoh' | 'eom', string>
  >;
  /** Extra main.cf parameters; they win over the defaults below. */
  mainCf?: Record<string, string>;
  /**
   * 'banner' (default) waits for a 220 greeting, which costs one SMTP session
   * (and so one milter session). 'listen' only waits for the listening socket,
   * for tests that count milter connections.
   */
  waitFor?: 'banner' | 'listen';
}

export interface PostfixInstance {
  smtpPort: number;
  configDir: string;
  queueDir: string;
  logFile: string;
  sendmail(from: string, to: string[], data: Buffer | string): Promise<void>;
  queueIds(): Promise<string[]>;
  /** Queue id and queue name (active, deferred, hold, ...) of every queued message. */
  queueEntries(): Promise<{ id: string; queue: string }[]>;
  flush(): Promise<void>;
  log(): Promise<string>;
  reload(): Promise<void>;
  stop(): Promise<void>;
}

const POSTFIX = '/usr/sbin/postfix';
const SENDMAIL = '/usr/sbin/sendmail';
const POSTQUEUE = '/usr/sbin/postqueue';
// Every parent of the instance state must be traversable by the postfix user,
// so instances live under a 0755 base rather than a 0700 mktemp dir.
const BASE_DIR = process.env['DOMSEC_POSTFIX_BASE'] ?? '/tmp/domsec-postfix';
// milter_<stage>_macros, except the two stages Postfix spells out.
const MACRO_STAGE: Record<string, string> = { eoh: 'end_of_header', eom: 'end_of_data' };

export function postfixAvailable(): boolean {
  // A private master must start as root (it drops to mail_owner itself).
  return process.getuid?.() === 0 && [POSTFIX, SENDMAIL, POSTQUEUE].every((p) => existsSync(p));
}

function run(file: string, args: string[], input?: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.on('error', () => undefined); // the error surfaces via the exit status
    child.stdin?.end(input);
  });
}

function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

const done = (p: Promise<unknown>): Promise<void> => p.then(() => undefined);

/**
 * Live processes of the instance using configDir. Postfix passes the config
 * dir to every daemon as MAIL_CONFIG; zombies have an empty environ and so
 * do not count.
 */
export function postfixProcesses(configDir: string): number[] {
  const needle = `MAIL_CONFIG=${configDir}\0`;
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    // The process may exit while we look: treat unreadable as "not ours".
    const env = (): string => readFileSync(`/proc/${name}/environ`, 'latin1');
    if (attempt(env)?.includes(needle)) pids.push(Number(name));
  }
  return pids;
}

function killAll(configDir: string): void {
  for (const pid of postfixProcesses(configDir)) attempt(() => process.kill(pid, 'SIGKILL'));
}

const live = new Map<string, string>(); // instance dir -> config dir
let exitHookInstalled = false;

// Best effort: a test that crashes or is cancelled must not leave masters behind.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanup = (): void => {
    for (const [dir, configDir] of live) {
      killAll(configDir);
      if (!process.env['DOMSEC_KEEP_POSTFIX']) rmSync(dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.once('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.kill(process.pid, sig);
    });
  }
}

// A zombie counts as dead: PID 1 in these containers reaps orphans lazily.
function alive(pid: number): boolean {
  const stat = attempt(() => readFileSync(`/proc/${pid}/stat`, 'latin1'));
  return stat !== undefined && stat[stat.lastIndexOf(')') + 2] !== 'Z';
}

// Instances whose owning Node process died without cleanup (SIGKILL, OOM).
function reapStale(): void {
  for (const name of existsSync(BASE_DIR) ? readdirSync(BASE_DIR) : []) {
    const dir = join(BASE_DIR, name);
    // No or empty owner.pid: another process is between mkdtemp and writing it.
    const owner = Number.parseInt(
      attempt(() => readFileSync(join(dir, 'owner.pid'), 'utf8')) ?? '',
      10,
    );
    if (Number.isNaN(owner) || alive(owner)) continue;
    killAll(join(dir, 'etc'));
    rmSync(dir, { recursive: true, force: true });
  }
}

function mainCf(dir: string, opts: PostfixOptions): Record<string, string> {
  const params: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: join(dir, 'queue'),
    data_directory: join(dir, 'data'),
    // No syslog here: log through postlogd to a file. Its path must match
    // maillog_file_prefixes (default "/var, /dev/stdout"), else nothing logs.
    maillog_file: join(dir, 'maillog'),
    maillog_file_prefixes: dir,
    myhostname: 'mta.test',
    myorigin: '$myhostname',
    inet_interfaces: 'loopback-only',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    // Nothing is local: every recipient goes to the relay (our sink).
    mydestination: '',
    relay_domains: '',
    local_recipient_maps: '',
    alias_maps: '',
    alias_database: '',
    local_transport: 'error:5.1.1 local delivery disabled in the test instance',
    relayhost: `[127.0.0.1]:${opts.relayPort}`,
    // No DNS at all: the relay is an IP literal, clients are not looked up.
    smtp_dns_support_level: 'disabled',
    smtp_host_lookup: 'native',
    lmtp_host_lookup: 'native',
    smtpd_peername_lookup: 'no',
    // Retry deferred mail quickly so tempfail tests finish in seconds.
    queue_run_delay: '1s',
    minimal_backoff_time: '1s',
    maximal_backoff_time: '2s',
    smtpd_error_sleep_time: '0',
    in_flow_delay: '0',
    message_size_limit: '104857600',
    mailbox_size_limit: '0',
    append_dot_mydomain: 'no',
    biff: 'no',
    milter_protocol: '6',
    milter_default_action: opts.milterDefaultAction ?? 'tempfail',
  };
  if (opts.milter) {
    params['smtpd_milters'] = opts.milter;
    params['non_smtpd_milters'] = opts.milter;
  }
  for (const [stage, macros] of Object.entries(opts.milterMacros ?? {})) {
    params[`milter_${MACRO_STAGE[stage] ?? stage}_macros`] = macros;
  }
  return { ...params, ...opts.mainCf };
}

// chroot column "n" everywhere: a chroot would need copies of /etc files.
function masterCf(port: number): string {
  const services = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'tlsmgr unix - - n 1000? 1 tlsmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  return `${services.join('\n')}\n`;
}

/** Resolves true once something on the port sends a full SMTP reply line. */
function bannerAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (/^\d{3} [^\n]*\n/m.test(text)) {
        socket.end('QUIT\r\n', () => done(true));
      }
    });
  });
}

function listening(port: number): boolean {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  // Column 4 state 0A is LISTEN.
  return readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .some((l) => l.trim().split(/\s+/)[1] === hex && l.trim().split(/\s+/)[3] === '0A');
}

async function startOnce(dir: string, opts: PostfixOptions): Promise<number> {
  const configDir = join(dir, 'etc');
  const logFile = join(dir, 'maillog');
  const smtpPort = await freePort();
  const cf = Object.entries(mainCf(dir, opts)).map(([k, v]) => `${k} = ${v}`);
  await writeFile(join(configDir, 'main.cf'), `${cf.join('\n')}\n`);
  await writeFile(join(configDir, 'master.cf'), masterCf(smtpPort));
  // Postfix re-reads a config file until its mtime is 2 s old ("let it cool
  // down", 300 ms naps), which costs ~2 s per start. Backdate both files.
  const past = new Date(Date.now() - 60_000);
  for (const f of ['main.cf', 'master.cf']) utimesSync(join(configDir, f), past, past);
  try {
    // check creates the queue directories with Postfix's own ownership/modes.
    await run(POSTFIX, ['-c', configDir, 'check']);
    await run(POSTFIX, ['-c', configDir, 'start']);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (opts.waitFor === 'listen' ? listening(smtpPort) : await bannerAnswers(smtpPort)) {
        return smtpPort;
      }
      // master exits at once when it cannot bind (port race with another test).
      if (postfixProcesses(configDir).length === 0) throw new Error('master exited');
      if (Date.now() > deadline) throw new Error('no SMTP banner after 15 s');
      await sleep(50);
    }
  } catch (err) {
    killAll(configDir);
    const log = await readFile(logFile, 'utf8').catch(() => '(no maillog)');
    const tail = log.split('\n').slice(-40).join('\n');
    throw new Error(`Postfix in ${configDir} failed to start: ${(err as Error).message}\n${tail}`);
  }
}

export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  installExitHook();
  mkdirSync(BASE_DIR, { recursive: true, mode: 0o755 });
  chmodSync(BASE_DIR, 0o755);
  reapStale();
  const dir = mkdtempSync(join(BASE_DIR, 'pf-'));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'etc');
  const queueDir = join(dir, 'queue');
  const logFile = join(dir, 'maillog');
  mkdirSync(configDir, { mode: 0o755 });
  mkdirSync(queueDir, { mode: 0o755 });
  live.set(dir, configDir);

  let smtpPort = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      smtpPort = await startOnce(dir, opts);
      break;
    } catch (err) {
      const busy = /Address already in use/.test((err as Error).message);
      if (!busy || attempt >= 3) {
        live.delete(dir);
        if (!process.env['DOMSEC_KEEP_POSTFIX']) rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  let stopped = false;
  return {
    smtpPort,
    configDir,
    queueDir,
    logFile,
    // -i: a line with a single dot is message content, not end of input.
    sendmail: (from, to, data) =>
      done(run(SENDMAIL, ['-C', configDir, '-i', '-f', from, '--', ...to], data)),
    async queueIds() {
      const out = await run(POSTQUEUE, ['-c', configDir, '-j']);
      return out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => (JSON.parse(l) as { queue_id: string }).queue_id);
    },
    async queueEntries() {
      const out = await run(POSTQUEUE, ['-c', configDir, '-j']);
      return out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { queue_id: string; queue_name: string })
        .map((e) => ({ id: e.queue_id, queue: e.queue_name }));
    },
    flush: () => done(run(POSTQUEUE, ['-c', configDir, '-f'])),
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    reload: () => done(run(POSTFIX, ['-c', configDir, 'reload'])),
    async stop() {
      if (stopped) return;
      stopped = true;
      // In 3.7 "stop" and "abort" both SIGTERM the master, but "stop" then
      // polls with "sleep 1" (~1 s per stop). Use "abort" and poll ourselves
      // until every daemon of this instance is gone.
      await run(POSTFIX, ['-c', configDir, 'abort']).catch(() => undefined);
      const deadline = Date.now() + 10_000;
      while (postfixProcesses(configDir).length > 0 && Date.now() < deadline) await sleep(25);
      killAll(configDir);
      live.delete(dir);
      if (!process.env['DOMSEC_KEEP_POSTFIX']) rmSync(dir, { recursive: true, force: true });
    },
  };
}
