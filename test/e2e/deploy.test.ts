import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { startServe } from '../helpers/cli.js';
import { startPostfix } from '../helpers/postfix.js';
import { promtool } from '../helpers/prometheus.js';
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

const repoFile = (path: string) =>
  readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

test('every way of starting the milter passes the same Node flags (src/node-flags.ts)', async () => {
  const flags = NODE_FLAGS.join(' ');
  assert.ok(flags.length > 0);
  const pkg = JSON.parse(repoFile('package.json')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts['start']!, new RegExp(`node ${flags} dist/src/cli\\.js serve --dev$`));
  // systemd runs /usr/bin/domsec-milter: the installed (built) file's shebang carries them.
  const shebang = `#!/usr/bin/env -S node ${flags}`;
  assert.equal(repoFile('src/cli.ts').split('\n')[0], shebang);
  assert.equal(
    readFileSync(new URL('../../src/cli.js', import.meta.url), 'utf8').split('\n')[0],
    shebang,
  );
  const entrypoint = /^ENTRYPOINT (.*)$/m.exec(repoFile('Dockerfile'))?.[1];
  assert.deepEqual(JSON.parse(entrypoint ?? '[]'), [
    'node',
    ...NODE_FLAGS,
    '/opt/domsec-milter/dist/src/cli.js',
  ]);
  assert.match(
    repoFile('deploy/systemd/domsec-milter.service'),
    /^ExecStart=\/usr\/bin\/domsec-milter serve$/m,
  );
  // The tests and benches start it the same way.
  const serve = await startServe({ DOMSEC_LOG_LEVEL: 'warn' });
  try {
    const argv = readFileSync(`/proc/${serve.process.pid}/cmdline`, 'latin1').split('\0');
    assert.deepEqual(argv.slice(1, 1 + NODE_FLAGS.length), [...NODE_FLAGS]);
  } finally {
    await serve.stop();
  }
});

test('the Dockerfile builds in stages and runs the milter as an unprivileged user', () => {
  const docker = repoFile('Dockerfile');
  const stages = docker.match(/^FROM /gm) ?? [];
  assert.ok(stages.length >= 2, 'multi-stage');
  const users = [...docker.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
  assert.ok(users.length > 0 && !users.includes('root') && !users.includes('0'), `USER ${users}`);
  // The runtime stage gets no compiler, tests or sources: only dist/src, dist/protocol, node_modules.
  const runtime = docker.slice(docker.lastIndexOf('\nFROM '));
  assert.doesNotMatch(runtime, /COPY --from=build \/src\/(src|test|bench)\b/);
  assert.match(runtime, /npm prune --omit=dev|node_modules/);
  assert.match(docker, /^HEALTHCHECK .*\/healthz/m);
  assert.match(docker, /DOMSEC_LISTEN=inet:0\.0\.0\.0:8890/);
});

test('compose runs Postfix, the milter, Redis, Prometheus and Grafana, wired to each other', async () => {
  const compose = repoFile('deploy/docker/compose.yml');
  for (const service of ['milter', 'postfix', 'redis', 'prometheus', 'grafana'])
    assert.match(compose, new RegExp(`^  ${service}:$`, 'm'), service);
  assert.match(compose, /DOMSEC_REDIS_URL: redis:\/\/redis:6379/);
  // Grafana's dashboard provider reads the directory the dashboard is mounted into.
  const provider = repoFile('grafana/provisioning/dashboards/domsec.yml');
  const path = /path: (\S+)/.exec(provider)?.[1];
  assert.ok(path && compose.includes(`:${path}/domsec-milter.json:ro`), `mounted under ${path}`);
  // Postfix in compose attaches the milter with the deploy/postfix/main.cf snippet itself.
  assert.match(repoFile('deploy/docker/postfix/Dockerfile'), /COPY deploy\/postfix\/main\.cf /);
  assert.match(repoFile('deploy/docker/prometheus.yml'), /targets: \['milter:9464'\]/);
});

test('the compose Prometheus configuration passes promtool with the alert rules beside it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-compose-prom-'));
  try {
    await writeFile(join(dir, 'prometheus.yml'), repoFile('deploy/docker/prometheus.yml'));
    await writeFile(
      join(dir, 'domsec-alerts.yml'),
      repoFile('deploy/prometheus/domsec-alerts.yml'),
    );
    const r = await promtool(['check', 'config', join(dir, 'prometheus.yml')]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS: 1 rule files found/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
