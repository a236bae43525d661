import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startPostfix } from '../helpers/postfix.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

/** `name = value` lines of a main.cf snippet. */
function parseMainCf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\s*=\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

test('the Postfix snippet in deploy/ passes postfix check on a real instance', async () => {
  const snippet = parseMainCf(
    readFileSync(new URL('../../../deploy/postfix/main.cf', import.meta.url), 'utf8'),
  );
  assert.ok(snippet['smtpd_milters'] && snippet['milter_default_action'] === 'tempfail');
  const sink = await startSmtpSink();
  // startPostfix runs `postfix check` and fails with its output if the settings are wrong.
  const pf = await startPostfix({ relayPort: sink.port, mainCf: snippet, waitFor: 'listen' });
  try {
    const log = await pf.log();
    assert.doesNotMatch(log, /warning|fatal|error/i, log);
  } finally {
    await pf.stop();
    await sink.close();
  }
});
