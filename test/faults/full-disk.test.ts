/**
 * The only thing the milter writes is its development identity, at the first
 * start without keys (./.domsec/keys). On a full or read-only filesystem that
 * start fails with one line and exit code 1, leaving nothing half-written;
 * with its keys in place it serves from a read-only filesystem, writing nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli, startServe } from '../helpers/cli.js';
import { runMessage, servedMilter } from '../helpers/gateway-app.js';
import { message } from '../helpers/gateway-fixture.js';
import { fullFilesystem, type Mount, readOnlyView } from '../helpers/mounts.js';
import { freePort } from '../helpers/ports.js';

/** Every file below `dir`, relative. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** `serve` where it must fail at once: its exit code and what it said. */
async function serveFails(cwd: string) {
  const r = await runCli(
    // As npm start runs it: the development identity is what gets written.
    ['serve', '--dev'],
    {
      DOMSEC_LISTEN: `inet:127.0.0.1:${await freePort()}`,
      DOMSEC_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
    },
    cwd,
  );
  return { code: r.code, lines: `${r.stdout}${r.stderr}`.split('\n').filter((l) => l !== '') };
}

describe('a full or read-only disk', () => {
  const mounts: Mount[] = [];
  const dirs: string[] = [];
  after(() => {
    for (const m of mounts.reverse()) m.unmount();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('first start on a full filesystem: one line naming the file, exit 1, nothing left; with room, it starts', async () => {
    const full = fullFilesystem();
    mounts.push(full);
    const r = await serveFails(full.dir);
    assert.equal(r.code, 1);
    assert.deepEqual(r.lines, [
      'domsec-milter: cannot start: cannot write .domsec/keys/example.org.sign.key.pem: ENOSPC: no space left on device',
    ]);
    assert.deepEqual(files(full.dir), ['filler'], 'no empty or partial key file left behind');

    // Room again: the next start creates the identity (an empty key file would have stopped it).
    rmSync(full.filler);
    const milter = await startServe({}, full.dir);
    try {
      assert.match(milter.output(), /created a development identity/);
      assert.equal(files(full.dir).filter((f) => f.startsWith('.domsec/keys/')).length, 6);
    } finally {
      assert.equal(await milter.stop(), 0);
    }
  });

  it('first start on a read-only filesystem: one line with the real cause (EROFS), exit 1', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'domsec-empty-'));
    dirs.push(empty);
    const ro = readOnlyView(empty);
    mounts.push(ro);
    const r = await serveFails(ro.dir);
    assert.equal(r.code, 1);
    assert.equal(r.lines.length, 1, r.lines.join('\n'));
    assert.match(
      r.lines[0]!,
      /^domsec-milter: cannot start: cannot create the development identity's directory \.\/\.domsec\/keys: EROFS: read-only file system, mkdir '.*\/\.domsec'$/,
    );
    assert.equal(existsSync(join(empty, '.domsec')), false);
  });

  it('with its keys in place, serve runs from a read-only filesystem and writes nothing', async () => {
    // The identity created once where it may be written...
    const home = mkdtempSync(join(tmpdir(), 'domsec-home-'));
    dirs.push(home);
    const first = await startServe({}, home);
    assert.equal(await first.stop(), 0);
    const before = files(home);
    assert.equal(before.length, 6);
    // ...then the same directory, read-only: any write would fail with EROFS.
    const ro = readOnlyView(home);
    mounts.push(ro);
    const milter = await startServe({}, ro.dir);
    try {
      assert.doesNotMatch(milter.output(), /created a development identity/);
      const o = await runMessage(
        servedMilter(milter.port),
        Buffer.from(message('read-only', 'Dave <dave@example.info>')),
        { from: '<alice@example.org>', rcpts: ['<dave@example.info>'], address: '127.0.0.1' },
      );
      assert.equal(o.decision?.type, 'accept');
      const signed = o.edits.some(
        (e) =>
          (e.type === 'changeHeader' || e.type === 'addHeader') &&
          e.name.toLowerCase() === 'content-type' &&
          /multipart\/signed/.test(String(e.value)),
      );
      assert.ok(signed, 'signed with the identity read from the read-only disk');
    } finally {
      assert.equal(await milter.stop(), 0, milter.output());
    }
    assert.deepEqual(files(home), before);
  });
});
