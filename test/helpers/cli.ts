/** Runs the real `domsec-milter` command as a child process. */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { acceptsConnections, freePort } from './ports.js';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (in `cwd` when given). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...baseEnv(), ...env }, timeout: 30_000, ...(cwd ? { cwd } : {}) },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

export interface ServingMilter {
  readonly process: ChildProcess;
  readonly port: number;
  /** `inet:127.0.0.1:PORT` */
  readonly address: string;
  /** The metrics and health endpoint, `http://127.0.0.1:PORT`. */
  readonly httpUrl: string;
  /** Everything it logged so far. */
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k]!;
  return env;
}

export interface ServeOptions {
  /** The milter port; a free one when absent (a restarted milter takes its predecessor's). */
  readonly port?: number;
  /**
   * `serve --dev` (a development identity for keyless local domains), as
   * `npm start` runs it. Default: when the environment names no DOMSEC_KEYS_DIR.
   */
  readonly dev?: boolean;
}

/** Starts `domsec-milter serve` on a free port and waits for its "listening" line. */
export async function startServe(
  env: Record<string, string> = {},
  cwd?: string,
  opts: ServeOptions = {},
): Promise<ServingMilter> {
  const port = opts.port ?? (await freePort());
  const http = env['DOMSEC_HTTP_LISTEN'] ?? `127.0.0.1:${await freePort()}`;
  // A private working directory: the development identity is created under ./.domsec there.
  const dir = cwd ?? mkdtempSync(join(tmpdir(), 'domsec-serve-'));
  // As the product starts it (src/node-flags.ts).
  const dev = opts.dev ?? !env['DOMSEC_KEYS_DIR'];
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'serve', ...(dev ? ['--dev'] : [])], {
    cwd: dir,
    env: {
      ...baseEnv(),
      DOMSEC_LISTEN: `inet:127.0.0.1:${port}`,
      // Tests run in parallel: never the fixed default metrics port.
      DOMSEC_HTTP_LISTEN: http,
      DOMSEC_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  // Generous: a first start may generate development keys while the suite loads both cores.
  const deadline = Date.now() + 60_000;
  // The "listening" line (info level) comes once the HTTP endpoint is up too; the
  // milter port accepts earlier, so a connect is the sign only at quieter levels.
  const level = env['DOMSEC_LOG_LEVEL'] ?? 'info';
  const quiet = level === 'warn' || level === 'error';
  const listen = env['DOMSEC_LISTEN'];
  const milterSocket = listen?.startsWith('unix:') ? listen.slice('unix:'.length) : port;
  while (quiet ? !(await acceptsConnections(milterSocket)) : !out.includes('milter listening')) {
    if (child.exitCode !== null) throw new Error(`domsec-milter exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`domsec-milter did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    process: child,
    port,
    address: `inet:127.0.0.1:${port}`,
    httpUrl: `http://${http}`,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (!cwd) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
