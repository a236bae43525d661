/**
 * A real Sendmail daemon on loopback, private to one test (the Postfix
 * harness's counterpart, test/helpers/postfix.ts).
 *
 * Sendmail asks for its host name before it reads sendmail.cf: when the
 * machine's name has no dot and /etc/hosts gives no dotted alias, it logs
 * "My unqualified host name (...) unknown; sleeping for retry" and sleeps
 * 60 s, and only then greets (what made an earlier harness time out). No cf
 * option can prevent that, so each daemon runs in its own UTS and mount
 * namespace (`unshare`) with a dotted host name and private /etc/hosts and
 * /etc/nsswitch.conf (`hosts: files`): it starts in milliseconds and never
 * asks DNS anything. The namespace also finds every process of the instance,
 * including the delivery children that leave the process group.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';
import { M4, sendmailDist } from './sendmail-dist.js';
import { sendmailMc } from './sendmail-mc.js';

export interface SendmailOptions {
  /** Where Sendmail delivers everything: smtp to [127.0.0.1]:relayPort. */
  relayPort: number;
  /** m4 lines with INPUT_MAIL_FILTER, e.g. deployedMilterMc(port) from sendmail-mc.ts. */
  milterMc?: string;
  /** Host name and $j; default mta.test. */
  hostname?: string;
}

export interface SendmailInstance {
  readonly smtpPort: number;
  readonly dir: string;
  /** Live processes of this instance (daemon, sessions, deliveries): those in its mount namespace. */
  processes(): number[];
  /** The SMTP traffic Sendmail logged (-X), for failure messages. */
  traffic(): string;
  /** What the daemon wrote to stdout/stderr. */
  output(): string;
  stop(): Promise<void>;
}

const BASE_DIR = process.env['DOMSEC_SENDMAIL_BASE'] ?? join(tmpdir(), 'domsec-sendmail');
const START_TIMEOUT_MS = 15_000;

// $1 host name, $2 hosts file, $3 nsswitch.conf, then the sendmail command.
// The bind mounts are visible only in the namespace unshare created.
const NAMESPACE_SCRIPT = `set -e
hostname "$1"
mount --bind "$2" /etc/hosts
mount --bind "$3" /etc/nsswitch.conf
shift 3
exec "$@"`;

function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Live processes in the mount namespace `ns` (e.g. "mnt:[4026532177]"). */
function processesIn(ns: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    // The process may exit while we look; zombies have no namespace link.
    if (attempt(() => readlinkSync(`/proc/${name}/ns/mnt`)) === ns) pids.push(Number(name));
  }
  return pids;
}

function killAll(ns: string, signal: NodeJS.Signals): void {
  for (const pid of processesIn(ns)) attempt(() => process.kill(pid, signal));
}

const live = new Map<string, string>(); // instance dir -> mount namespace
let exitHookInstalled = false;

// Best effort: a test that crashes or is cancelled must not leave daemons behind.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanup = (): void => {
    for (const [dir, ns] of live) {
      killAll(ns, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
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
    const owner = Number.parseInt(
      attempt(() => readFileSync(join(dir, 'owner.pid'), 'utf8')) ?? '',
      10,
    );
    // No owner yet: another process is between mkdtemp and writing it.
    if (Number.isNaN(owner) || alive(owner)) continue;
    const ns = attempt(() => readFileSync(join(dir, 'mnt.ns'), 'utf8'));
    if (ns) killAll(ns, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves with the first reply line, or '' when none comes within 2 s. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (line: string): void => {
      socket.destroy();
      resolve(line);
    };
    socket.setTimeout(2000, () => done(''));
    socket.on('error', () => done(''));
    socket.on('close', () => done(''));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl >= 0) socket.end('QUIT\r\n', () => done(text.slice(0, nl).trim()));
    });
  });
}

interface Started {
  child: ChildProcess;
  ns: string;
  smtpPort: number;
}

async function startOnce(
  dir: string,
  opts: SendmailOptions,
  hostname: string,
  output: { text: string },
): Promise<Started> {
  const dist = await sendmailDist();
  const smtpPort = await freePort();
  const file = (name: string): string => join(dir, name);
  writeFileSync(file('hosts'), `127.0.0.1\t${hostname} localhost\n`);
  writeFileSync(file('nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files\n');
  writeFileSync(file('service.switch'), 'hosts files\naliases files\n');
  const mc = sendmailMc({
    cfDir: dist.cfDir,
    hostname,
    smtpPort,
    relayPort: opts.relayPort,
    queueDir: file('queue'),
    pidFile: file('sendmail.pid'),
    statusFile: file('statistics'),
    hostsFile: file('hosts'),
    serviceSwitchFile: file('service.switch'),
    milterMc: opts.milterMc,
  });
  writeFileSync(file('sendmail.mc'), mc);
  writeFileSync(file('sendmail.cf'), await run(M4, [file('sendmail.mc')]));

  // -bD: a daemon that stays in the foreground; -X: log the SMTP traffic.
  const command = [dist.binary, '-C', file('sendmail.cf'), '-bD', '-X', file('traffic.log')];
  const nsFiles = [hostname, file('hosts'), file('nsswitch.conf')];
  const child = spawn(
    'unshare',
    ['--mount', '--uts', '--', '/bin/sh', '-c', NAMESPACE_SCRIPT, 'sh', ...nsFiles, ...command],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => {
    output.text += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output.text += d.toString();
  });
  child.on('error', (err) => {
    output.text += `\ncannot run unshare: ${err.message}`;
  });
  const host = readlinkSync('/proc/self/ns/mnt');
  const deadline = Date.now() + START_TIMEOUT_MS;
  let ns: string | undefined;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      throw new Error(`exited (${child.exitCode ?? child.signalCode ?? 'not started'})`);
    }
    // The namespace exists once unshare has run; the daemon keeps it.
    const mine = attempt(() => readlinkSync(`/proc/${child.pid}/ns/mnt`));
    if (mine !== undefined && mine !== host) ns = mine;
    if (ns !== undefined) {
      writeFileSync(file('mnt.ns'), ns);
      const line = await greeting(smtpPort);
      if (line.startsWith(`220 ${hostname} ESMTP Sendmail`)) return { child, ns, smtpPort };
    }
    if (Date.now() > deadline) {
      if (ns) killAll(ns, 'SIGKILL');
      child.kill('SIGKILL');
      throw new Error(`no Sendmail greeting on port ${smtpPort} after ${START_TIMEOUT_MS} ms`);
    }
    await sleep(25);
  }
}

/**
 * Starts a Sendmail daemon relaying everything to 127.0.0.1:relayPort and
 * waits for its greeting. Needs root (namespaces, bind mounts, port binding
 * as Sendmail expects) and downloads Sendmail on first use (sendmail-dist.ts).
 */
export async function startSendmail(opts: SendmailOptions): Promise<SendmailInstance> {
  if (process.getuid?.() !== 0) throw new Error('a private Sendmail needs root');
  installExitHook();
  mkdirSync(BASE_DIR, { recursive: true, mode: 0o755 });
  reapStale();
  const hostname = opts.hostname ?? 'mta.test';
  if (!hostname.includes('.')) throw new Error(`host name ${hostname} must contain a dot`);
  const dir = mkdtempSync(join(BASE_DIR, 'sm-'));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  mkdirSync(join(dir, 'queue'), { mode: 0o700 });

  const output = { text: '' };
  let started: Started | undefined;
  // A port taken between freePort() and Sendmail's bind: try another one.
  for (let n = 1; started === undefined; n++) {
    try {
      started = await startOnce(dir, opts, hostname, output);
    } catch (err) {
      if (n < 3 && /^no Sendmail greeting/.test((err as Error).message)) continue;
      rmSync(dir, { recursive: true, force: true });
      const hint = /unshare|mount|hostname/.test(output.text)
        ? '\n(each Sendmail runs in its own mount and UTS namespace: root with CAP_SYS_ADMIN is needed)'
        : '';
      throw new Error(
        `Sendmail in ${dir} failed to start: ${(err as Error).message}\n${output.text}${hint}`,
      );
    }
  }
  const { child, ns, smtpPort } = started;
  live.set(dir, ns);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  let stopped = false;
  return {
    smtpPort,
    dir,
    processes: () => processesIn(ns),
    traffic: () => attempt(() => readFileSync(join(dir, 'traffic.log'), 'latin1')) ?? '',
    output: () => output.text,
    async stop() {
      if (stopped) return;
      stopped = true;
      killAll(ns, 'SIGTERM');
      const deadline = Date.now() + 5000;
      while (processesIn(ns).length > 0 && Date.now() < deadline) await sleep(25);
      killAll(ns, 'SIGKILL');
      await exited;
      live.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
