/**
 * Sendmail binaries for the tests without installing them: Debian's
 * sendmail-bin conflicts with postfix, so the .debs are downloaded with
 * `apt-get download` and unpacked with `dpkg -x` into a cache that later runs
 * reuse. Anything missing fails loudly: a Sendmail test must never silently
 * turn into no test.
 */

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SendmailDist {
  /** The sendmail binary (daemon and everything else). */
  readonly binary: string;
  /** sendmail-cf's m4 tree: `${cfDir}/m4/cf.m4`, `ostype/`, `feature/`... */
  readonly cfDir: string;
}

const PACKAGES = ['sendmail-bin', 'sendmail-cf'];
// Compiled to dist/test/helpers/: three levels up is the repository.
const DEFAULT_CACHE = fileURLToPath(
  new URL('../../../node_modules/.cache/domsec-sendmail/', import.meta.url),
);
const BINARY = 'usr/libexec/sendmail/sendmail';
const CF_DIR = 'usr/share/sendmail/cf';

export const M4 = '/usr/bin/m4';

function run(file: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, timeout: 120_000, env: { ...process.env, LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

function layout(root: string): SendmailDist {
  return { binary: join(root, BINARY), cfDir: join(root, CF_DIR) };
}

function complete(root: string): boolean {
  const d = layout(root);
  return existsSync(d.binary) && existsSync(join(d.cfDir, 'm4/cf.m4'));
}

async function download(dir: string): Promise<void> {
  // As root apt drops to _apt for downloads, which cannot write a private dir.
  const args = ['-o', 'APT::Sandbox::User=root', 'download', ...PACKAGES];
  try {
    await run('apt-get', args, dir);
  } catch (first) {
    // A fresh machine (or CI image) has empty package lists: fetch them once.
    try {
      await run('apt-get', ['update', '-qq']);
      await run('apt-get', args, dir);
    } catch (second) {
      throw new Error(
        `cannot obtain Sendmail (apt-get download ${PACKAGES.join(' ')}):\n` +
          `${(first as Error).message}\nafter apt-get update: ${(second as Error).message}`,
      );
    }
  }
}

/** Shared libraries the binary needs but the machine lacks (libwrap0 is the usual one). */
async function missingLibraries(binary: string): Promise<string[]> {
  const out = await run('ldd', [binary]);
  return out
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(/\s+/)[0] ?? l.trim());
}

/**
 * The unpacked Sendmail, downloading and unpacking it on first use. Set
 * DOMSEC_SENDMAIL_CACHE to keep it elsewhere than node_modules/.cache.
 */
export async function sendmailDist(): Promise<SendmailDist> {
  const cache = process.env['DOMSEC_SENDMAIL_CACHE'] ?? DEFAULT_CACHE;
  const root = join(cache, 'root');
  if (!complete(root)) {
    mkdirSync(cache, { recursive: true });
    // Unpack beside the final place and rename: a concurrent run sees all or nothing.
    const work = mkdtempSync(join(cache, 'unpack-'));
    try {
      await download(work);
      const debs = readdirSync(work).filter((f) => f.endsWith('.deb'));
      if (debs.length !== PACKAGES.length) {
        throw new Error(`apt-get download left ${debs.join(', ') || 'no .deb'} in ${work}`);
      }
      const unpacked = join(work, 'root');
      for (const deb of debs) await run('dpkg', ['-x', join(work, deb), unpacked]);
      if (!complete(unpacked)) throw new Error(`no ${BINARY} or cf.m4 in the unpacked packages`);
      if (!complete(root)) {
        rmSync(root, { recursive: true, force: true });
        renameSync(unpacked, root);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const dist = layout(root);
  if (!existsSync(M4)) {
    throw new Error(`${M4} is missing: install m4 (see .ci/run) to build sendmail.cf`);
  }
  const missing = await missingLibraries(dist.binary);
  if (missing.length > 0) {
    throw new Error(
      `${dist.binary} needs ${missing.join(', ')}: install libwrap0 (see .ci/run) or the package providing them`,
    );
  }
  return dist;
}
