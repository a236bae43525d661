/**
 * The suite needs nothing outside the repository: a clone in a directory
 * with nothing beside it builds and runs the tests that read fixture files.
 * The repository's files (tracked, and new ones git does not ignore) are
 * copied into an empty temporary directory, built there with the project's
 * own node_modules linked in, and the fixture-reading tests run from that
 * copy. A static check beside it: no source names a path beside the project.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function repositoryFiles(): string[] {
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  // node_modules is linked in below, whether it is a directory or a link to one.
  return r.stdout.split('\0').filter((f) => f !== '' && f !== 'node_modules');
}

/** Our environment without the test runner's marker: the child runs as a test runner of its own. */
function testRunnerFreeEnv(): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _runner, ...env } = process.env;
  return env;
}

/** A path beside the project, or the variable that used to point there (spelled in pieces: this file is code too). */
const OUTSIDE_PATH = new RegExp(`\\.\\./${'sha'}red\\b|DOMSEC_${'VECTORS'}_DIR`);

/** Files that can name a path at run time: code, scripts, the CI entry point. */
const CODE = /\.(ts|mjs|js|sh)$|^\.ci\/run$/;

describe('the suite is self-contained', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'domsec-clone-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test('no code or test names a path beside the project (the shared folder or above the root)', () => {
    const offenders = repositoryFiles()
      .filter((f) => CODE.test(f))
      .filter((f) => OUTSIDE_PATH.test(readFileSync(join(ROOT, f), 'utf8')));
    assert.deepEqual(offenders, []);
  });

  test('a copy with nothing beside it builds and passes the fixture-reading tests', () => {
    // <scratch>/p is the clone; <scratch> holds nothing else, so nothing beside the project.
    const clone = join(scratch, 'p');
    for (const f of repositoryFiles()) {
      mkdirSync(dirname(join(clone, f)), { recursive: true });
      cpSync(join(ROOT, f), join(clone, f));
    }
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
    const tsc = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      {
        cwd: clone,
        encoding: 'utf8',
      },
    );
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
    const run = spawnSync(
      process.execPath,
      [
        '--test',
        '--test-reporter=tap',
        'dist/test/cms/vectors.test.js',
        'dist/test/hostile/fuzz-cms.test.js',
      ],
      { cwd: clone, encoding: 'utf8', env: testRunnerFreeEnv() },
    );
    assert.equal(run.status, 0, run.stdout.slice(-4000) + run.stderr.slice(-2000));
    assert.match(run.stdout, /^# fail 0$/m);
    assert.doesNotMatch(run.stdout, /^# pass 0$/m);
  });
});
