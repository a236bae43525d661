/**
 * Filesystems that fail the way disks do, for the tests that need them: a
 * tiny tmpfs filled to the last byte (ENOSPC) and a read-only bind mount
 * (EROFS). Root ignores file modes, so only a mount makes a directory truly
 * unwritable; this needs CAP_SYS_ADMIN (root in this container has it).
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Mount {
  readonly dir: string;
  unmount(): void;
}

function mount(args: string[], dir: string): void {
  try {
    execFileSync('mount', [...args, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `mount ${args.join(' ')} failed (these tests need root with CAP_SYS_ADMIN): ${String((err as { stderr?: Buffer }).stderr ?? err)}`,
    );
  }
}

function unmounter(dir: string): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  };
}

/** A tmpfs of `kilobytes`, then filled: every later write of data fails with ENOSPC. */
export function fullFilesystem(kilobytes = 64): Mount & { readonly filler: string } {
  const dir = mkdtempSync(join(tmpdir(), 'domsec-full-'));
  mount(['-t', 'tmpfs', '-o', `size=${kilobytes}k,mode=0755`, 'tmpfs'], dir);
  const filler = join(dir, 'filler');
  try {
    writeFileSync(filler, Buffer.alloc(kilobytes * 1024 * 2));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  return { dir, filler, unmount: unmounter(dir) };
}

/** `source` seen through a read-only bind mount: every write fails with EROFS. */
export function readOnlyView(source: string): Mount {
  const dir = mkdtempSync(join(tmpdir(), 'domsec-ro-'));
  mount(['--bind', source], dir);
  try {
    execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
  } catch (err) {
    unmounter(dir)();
    throw err;
  }
  return { dir, unmount: unmounter(dir) };
}
