import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Decisions, MilterClient } from '../../protocol/index.js';
import { CLI, runCli, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/wait.js';

function runOpenssl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('openssl', args, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}

describe('domsec-milter command line', () => {
  for (const [variable, value, expected] of [
    ['DOMSEC_LISTEN', 'bogus', /DOMSEC_LISTEN="bogus": expected inet:HOST:PORT or unix:/],
    ['DOMSEC_LISTEN', 'inet:127.0.0.1:99999', /DOMSEC_LISTEN="inet:127.0.0.1:99999": expected/],
    [
      'DOMSEC_LOG_LEVEL',
      'loud',
      /DOMSEC_LOG_LEVEL="loud": expected one of debug, info, warn, error/,
    ],
    [
      'DOMSEC_LOCAL_DOMAINS',
      'not a domain',
      /DOMSEC_LOCAL_DOMAINS="not a domain": expected a comma-separated/,
    ],
    ['DOMSEC_HTTP_LISTEN', '9464', /DOMSEC_HTTP_LISTEN="9464": expected HOST:PORT/],
    ['DOMSEC_DRAIN_TIMEOUT', '-1', /DOMSEC_DRAIN_TIMEOUT="-1": expected an integer/],
  ] as const) {
    test(`bad ${variable} is one line on stderr and exit 1 (serve and check-config)`, async () => {
      for (const command of ['serve', 'check-config']) {
        const r = await runCli([command], { [variable]: value });
        assert.equal(r.code, 1);
        assert.match(r.stderr, expected);
        assert.equal(r.stderr.trim().split('\n').length, 1, `one line, got: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/, 'no stack trace');
      }
    });
  }

  test('check-config prints the effective configuration', async () => {
    const r = await runCli(['check-config'], { DOMSEC_LOCAL_DOMAINS: 'example.org,Example.COM' });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^DOMSEC_LOCAL_DOMAINS=example.org,Example.COM$/m);
    assert.match(r.stdout, /^DOMSEC_LISTEN=inet:127.0.0.1:8890 {2}# default$/m);
  });

  test('check-config loads the keys as serve would: counts them, refuses a loose key file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-check-keys-'));
    try {
      const keygen = await runCli(['keygen', '--domain', 'example.net', '--out', dir]);
      assert.equal(keygen.code, 0, keygen.stderr);
      const env = { DOMSEC_KEYS_DIR: dir, DOMSEC_LOCAL_DOMAINS: 'example.net,example.com' };
      const ok = await runCli(['check-config'], env);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^# example\.net: 2 key\(s\) loaded$/m);
      assert.match(ok.stdout, /^# example\.com: no key$/m);
      await chmod(join(dir, 'example.net.sign.key.pem'), 0o640);
      const loose = await runCli(['check-config'], env);
      assert.equal(loose.code, 1);
      assert.match(
        loose.stderr,
        /example\.net\.sign\.key\.pem grants group or others access \(mode 640\)/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('keygen writes a domain PKI that OpenSSL verifies, and never overwrites it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-keygen-cli-'));
    try {
      const r = await runCli([
        'keygen',
        '--domain',
        'example.net',
        '--out',
        dir,
        '--algo',
        'ec-p256',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /example\.net\.sign\.key\.pem/);
      const ca = join(dir, 'ca', 'example.net.ca.crt.pem');
      const v = await runOpenssl([
        'verify',
        '-CAfile',
        ca,
        '-purpose',
        'smimesign',
        join(dir, 'example.net.sign.crt.pem'),
      ]);
      assert.match(v, /OK/);
      assert.equal((await stat(join(dir, 'example.net.sign.key.pem'))).mode & 0o777, 0o600);
      const again = await runCli(['keygen', '--domain', 'example.net', '--out', dir]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /exists: refusing to overwrite it/);
      const bad = await runCli([
        'keygen',
        '--domain',
        'example.net',
        '--out',
        dir,
        '--algo',
        'dsa',
      ]);
      assert.match(bad.stderr, /--algo must be one of rsa-2048, rsa-3072, ec-p256, ed25519/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('fail closed: with no key configured, serve (without --dev) creates nothing, says so in one line, exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-closed-'));
    try {
      // As under systemd with its optional EnvironmentFile missing: nothing set at all.
      const r = await runCli(
        ['serve'],
        {
          DOMSEC_LISTEN: `inet:127.0.0.1:${await freePort()}`,
          DOMSEC_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
        },
        dir,
      );
      assert.equal(r.code, 1);
      const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(
        lines[0]!,
        /^domsec-milter: cannot start: no key for example\.org in \.\/\.domsec\/keys: .*`serve --dev` for a development identity$/,
      );
      assert.deepEqual(await readdir(dir), [], 'no key was created');
      // One local domain of two without its key: refused too.
      const keys = join(dir, 'keys');
      await runCli(['keygen', '--domain', 'example.org', '--out', keys]);
      const partial = await runCli(
        ['serve'],
        {
          DOMSEC_KEYS_DIR: keys,
          DOMSEC_LOCAL_DOMAINS: 'example.org,example.com',
          DOMSEC_LISTEN: `inet:127.0.0.1:${await freePort()}`,
          DOMSEC_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
        },
        dir,
      );
      assert.equal(partial.code, 1);
      assert.match(partial.stderr, /cannot start: no key for example\.com in /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('serve --dev (npm start): with no key configured it creates a development identity and says so once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-dev-'));
    try {
      const milter = await startServe({ DOMSEC_LOCAL_DOMAINS: 'example.org,example.com' }, dir);
      assert.equal(await milter.stop(), 0);
      const lines = milter
        .output()
        .split('\n')
        .filter((l) => l.includes('development identity'));
      assert.equal(lines.length, 1);
      assert.deepEqual(JSON.parse(lines[0]!).domains, ['example.org', 'example.com']);
      assert.ok((await stat(join(dir, '.domsec/keys/example.com.encrypt.key.pem'))).isFile());
      // A second start finds the keys and creates nothing.
      const again = await startServe({ DOMSEC_LOCAL_DOMAINS: 'example.org,example.com' }, dir);
      assert.equal(await again.stop(), 0);
      assert.doesNotMatch(again.output(), /development identity/);
      // An administrator's own (empty) DOMSEC_KEYS_DIR is never filled behind their back.
      const own = join(dir, 'own-keys');
      await mkdir(own);
      const explicit = await startServe({ DOMSEC_KEYS_DIR: own }, dir, { dev: true });
      assert.equal(await explicit.stop(), 0);
      assert.match(explicit.output(), /no key for local domain/);
      assert.deepEqual(await readdir(own), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the HTTP endpoint: /healthz, /readyz and /metrics with the contract names', async () => {
    const httpPort = await freePort();
    const milter = await startServe({
      DOMSEC_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      DOMSEC_LOCAL_DOMAINS: 'example.org',
    });
    try {
      const c = await MilterClient.connect({ kind: 'inet', host: '127.0.0.1', port: milter.port });
      await c.negotiate();
      const get = async (path: string) => {
        const r = await fetch(`http://127.0.0.1:${httpPort}${path}`);
        return { status: r.status, text: await r.text() };
      };
      assert.deepEqual(await get('/healthz'), { status: 200, text: 'ok\n' });
      assert.deepEqual(await get('/readyz'), { status: 200, text: 'ready\n' });
      const metrics = await get('/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /^domsec_milter_connections 1$/m);
      assert.match(
        metrics.text,
        /^domsec_certificate_expiry_seconds\{domain="example.org",usage="sign"\} \d+$/m,
      );
      assert.match(metrics.text, /^# TYPE domsec_messages_total counter$/m);
      assert.match(metrics.text, /^# TYPE domsec_message_seconds histogram$/m);
      assert.match(metrics.text, /^domsec_process_nodejs_eventloop_lag_seconds /m);
      c.writeRaw(Buffer.from([0, 0, 0, 0]));
      const counted = /^domsec_milter_errors_total\{kind="protocol-error"\} 1$/m;
      let text = '';
      for (let i = 0; i < 100 && !counted.test(text); i++) {
        await sleep(50);
        text = (await get('/metrics')).text;
      }
      assert.match(text, counted);
      assert.equal((await get('/nothing')).status, 404);
    } finally {
      assert.equal(await milter.stop(), 0);
    }
  });

  test('serve --dev: /readyz answers 503 with the reason when a local domain has no key', async () => {
    const httpPort = await freePort();
    const keys = await mkdtemp(join(tmpdir(), 'domsec-nokeys-'));
    const milter = await startServe(
      { DOMSEC_HTTP_LISTEN: `127.0.0.1:${httpPort}`, DOMSEC_KEYS_DIR: keys },
      undefined,
      { dev: true },
    );
    try {
      const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(await r.text(), 'no key for example.org\n');
    } finally {
      assert.equal(await milter.stop(), 0);
      await rm(keys, { recursive: true, force: true });
    }
  });

  test('on a terminal the log is readable lines; piped it is JSON', async () => {
    // `script` gives the process a pseudo-terminal as stdout.
    const dir = await mkdtemp(join(tmpdir(), 'domsec-tty-'));
    const env = `DOMSEC_LISTEN=inet:127.0.0.1:${await freePort()} DOMSEC_HTTP_LISTEN=127.0.0.1:${await freePort()}`;
    const child = spawn(
      'script',
      ['-qfc', `env ${env} ${process.execPath} ${CLI} serve --dev`, '/dev/null'],
      {
        cwd: dir,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await until(() => out.includes('milter listening'), 60_000, 'the listening line');
      assert.match(out, /\d\d:\d\d:\d\d INFO {2}milter listening listen=inet:127\.0\.0\.1:\d+/);
      assert.doesNotMatch(out, /"msg":/);
    } finally {
      // Ctrl-C on the terminal: SIGINT to the milter, which drains and exits; script follows.
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.write('\x03');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    }
    const piped = await startServe();
    try {
      // startServe may return on the open port, before the line is read.
      await until(() => piped.output().includes('milter listening'), 30_000, 'the listening line');
      assert.match(piped.output(), /^\{"level":30,.*"msg":"milter listening"/m);
    } finally {
      await piped.stop();
    }
  });

  test('an unknown command is an error', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  });

  test('a milter port already in use: one line, exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const keys = await mkdtemp(join(tmpdir(), 'domsec-inuse-'));
      try {
        await runCli(['keygen', '--domain', 'example.org', '--out', keys]);
        const r = await runCli(['serve'], {
          DOMSEC_LISTEN: `inet:127.0.0.1:${port}`,
          DOMSEC_KEYS_DIR: keys,
        });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /cannot start: EADDRINUSE/);
      } finally {
        await rm(keys, { recursive: true, force: true });
      }
    } finally {
      blocker.close();
    }
  });

  test('serve on a unix socket accepts messages', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-cli-'));
    const path = join(dir, 'milter.sock');
    const milter = await startServe({ DOMSEC_LISTEN: `unix:${path}` });
    try {
      const c = await MilterClient.connect({ kind: 'unix', path });
      await c.negotiate();
      await c.mail('<a@example.org>');
      assert.deepEqual((await c.endOfMessage()).decision, Decisions.accept);
      c.destroy();
    } finally {
      assert.equal(await milter.stop(), 0);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('SIGTERM drains: the open message finishes, then exit 0', async () => {
    const milter = await startServe();
    const spec = { kind: 'inet', host: '127.0.0.1', port: milter.port } as const;
    const busy = await MilterClient.connect(spec);
    const idle = await MilterClient.connect(spec);
    await busy.negotiate();
    await idle.negotiate();
    await busy.mail('<a@example.org>');
    await sleep(50);
    milter.process.kill('SIGTERM');
    await until(() => idle.closed, 5000, 'idle connection closed');
    assert.equal(busy.closed, false, 'the open message is waited for');
    assert.equal(milter.process.exitCode, null);
    assert.deepEqual((await busy.endOfMessage()).decision, Decisions.accept);
    assert.equal(await milter.exited, 0);
    assert.match(milter.output(), /draining milter connections/);
    assert.match(milter.output(), /milter stopped/);
    busy.destroy();
  });
});
