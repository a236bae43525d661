/**
 * deploy/prometheus/ checked by the real promtool: the scrape config, the
 * alert rules, and the rules' unit tests (domsec-alerts.test.yml).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { promtool } from '../helpers/prometheus.js';

const deploy = (file: string) =>
  fileURLToPath(new URL(`../../../deploy/prometheus/${file}`, import.meta.url));
const CONFIG = deploy('prometheus.yml');
const RULES = deploy('domsec-alerts.yml');
const RULE_TESTS = deploy('domsec-alerts.test.yml');

/** What the alert rules must cover. */
const REQUIRED_ALERTS = [
  'DomsecCertificateExpiringSoon',
  'DomsecDecryptFailuresRising',
  'DomsecMilterDown',
  'DomsecRevocationUnknown',
];

const alertNames = (rules: string) =>
  [...rules.matchAll(/^\s*- alert:\s*(\S+)\s*$/gm)].map((m) => m[1]!).sort();

describe('deploy/prometheus with promtool', () => {
  test('promtool check config passes on prometheus.yml, rule file included', async () => {
    const r = await promtool(['check', 'config', CONFIG]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS: 1 rule files found/);
    assert.match(r.output, /is valid prometheus config file syntax/);
  });

  test('the scrape target is the default DOMSEC_HTTP_LISTEN', async () => {
    const { host, port } = loadConfig({}).httpListen;
    assert.match(await readFile(CONFIG, 'utf8'), new RegExp(`targets: \\['${host}:${port}'\\]`));
  });

  test("Grafana's datasource declares the scrape interval ($__rate_interval depends on it)", async () => {
    const datasource = await readFile(
      fileURLToPath(
        new URL('../../../grafana/provisioning/datasources/prometheus.yml', import.meta.url),
      ),
      'utf8',
    );
    const scrape = /^\s*scrape_interval:\s*(\S+)/m.exec(await readFile(CONFIG, 'utf8'))?.[1];
    assert.ok(scrape);
    assert.equal(/^\s*timeInterval:\s*(\S+)/m.exec(datasource)?.[1], scrape);
  });

  test('promtool check rules passes; the rules cover expiry, decrypt failures, revocation, milter down', async () => {
    const r = await promtool(['check', 'rules', RULES]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS: 4 rules found/);
    assert.deepEqual(alertNames(await readFile(RULES, 'utf8')), REQUIRED_ALERTS);
  });

  test('promtool test rules: every alert fires in its scenario and stays quiet where it should', async () => {
    const r = await promtool(['test', 'rules', RULE_TESTS]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
    const tests = await readFile(RULE_TESTS, 'utf8');
    for (const name of REQUIRED_ALERTS) {
      // A scenario in which it fires: exp_labels follow its alertname.
      const fires = new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`);
      assert.match(tests, fires, `${name} has no firing case in domsec-alerts.test.yml`);
    }
  });

  test('promtool is not lenient: a broken expression and a wrong expectation both fail', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-promtool-'));
    try {
      const broken = join(dir, 'broken.yml');
      await writeFile(
        broken,
        'groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum by (reason (rate(x[5m]))\n',
      );
      const check = await promtool(['check', 'rules', broken]);
      assert.notEqual(check.code, 0, check.output);
      // The milter-down alert waits 2m: one minute after the scrape failed it must not fire.
      const early = join(dir, 'early.test.yml');
      await writeFile(
        early,
        [
          `rule_files: ['${RULES}']`,
          'tests:',
          '  - interval: 1m',
          '    input_series:',
          `      - series: 'up{job="domsec-milter", instance="mx1:9464"}'`,
          "        values: '0x5'",
          '    alert_rule_test:',
          '      - eval_time: 1m',
          '        alertname: DomsecMilterDown',
          '        exp_alerts:',
          '          - exp_labels: { severity: critical, job: domsec-milter, instance: "mx1:9464" }',
          '',
        ].join('\n'),
      );
      const wrong = await promtool(['test', 'rules', early]);
      assert.notEqual(wrong.code, 0, wrong.output);
      assert.match(wrong.output, /FAILED:\s+alertname: DomsecMilterDown, time: 1m,[\s\S]*got:\[\]/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
