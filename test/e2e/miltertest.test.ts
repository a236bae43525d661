/**
 * miltertest (OpenDKIM's libmilter-based driver) runs Lua scripts against our
 * server: an independent MTA-side implementation checks our wire format.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestMilter, type TestMilter } from '../helpers/milter.js';
import { testApplication } from '../helpers/test-app.js';

const run = promisify(execFile);
const SCRIPTS = fileURLToPath(new URL('../../../test/miltertest/', import.meta.url));

describe('miltertest scripts', () => {
  let milter: TestMilter;
  before(async () => {
    milter = await startTestMilter(testApplication());
  });
  after(() => milter.close());

  const scripts = readdirSync(SCRIPTS).filter(
    (f) => f.endsWith('.lua') && f !== 'common.lua' && f !== 'run.lua',
  );
  test('the scripts are there', () => assert.ok(scripts.length >= 4));
  for (const script of scripts) {
    test(script, async () => {
      const port = milter.spec.kind === 'inet' ? milter.spec.port : 0;
      const args = [
        '-D',
        `port=${port}`,
        '-D',
        `dir=${SCRIPTS}`,
        '-D',
        `script=${script}`,
        '-s',
        `${SCRIPTS}run.lua`,
      ];
      try {
        const { stdout } = await run('miltertest', args, { timeout: 30_000 });
        assert.match(stdout, / ok\n?$/m);
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; code?: number };
        assert.fail(`miltertest ${script} exited ${e.code}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
      }
    });
  }
});
