import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ConfigError, describeConfig, loadConfig, VARIABLES } from '../../src/config.js';

describe('configuration', () => {
  test('the empty environment gives the embedded defaults', () => {
    const c = loadConfig({});
    assert.deepEqual(c.listen, { kind: 'inet', host: '127.0.0.1', port: 8890 });
    assert.deepEqual(c.httpListen, { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(c.localDomains, ['example.org']);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.drainTimeoutMs, 30_000);
    assert.equal(c.maxMessageBytes, 64 * 1024 * 1024);
  });

  test('DOMSEC_MAX_MESSAGE_BYTES takes bytes or a binary unit', () => {
    const size = (v: string) => loadConfig({ DOMSEC_MAX_MESSAGE_BYTES: v }).maxMessageBytes;
    assert.equal(size('52428800'), 52_428_800);
    assert.equal(size('512k'), 512 * 1024);
    assert.equal(size('50M'), 50 * 1024 * 1024);
    assert.equal(size('1g'), 1024 ** 3);
    for (const bad of ['2G', '1000', '10 M', '1.5M', 'big'])
      assert.throws(() => size(bad), /DOMSEC_MAX_MESSAGE_BYTES=.*expected a size from 65536/);
  });

  test('values are parsed and normalised', () => {
    const c = loadConfig({
      DOMSEC_LISTEN: 'unix:/run/domsec/milter.sock',
      DOMSEC_HTTP_LISTEN: '[::1]:9100',
      DOMSEC_LOCAL_DOMAINS: ' Example.ORG , mail.example.com ',
      DOMSEC_DRAIN_TIMEOUT: '5',
    });
    assert.deepEqual(c.listen, { kind: 'unix', path: '/run/domsec/milter.sock' });
    assert.deepEqual(c.httpListen, { host: '::1', port: 9100 });
    assert.deepEqual(c.localDomains, ['example.org', 'mail.example.com']);
    assert.equal(c.drainTimeoutMs, 5000);
  });

  test('Sendmail-style socket specs are understood', () => {
    assert.deepEqual(loadConfig({ DOMSEC_LISTEN: 'inet:8890@127.0.0.1' }).listen, {
      kind: 'inet',
      host: '127.0.0.1',
      port: 8890,
    });
    assert.deepEqual(loadConfig({ DOMSEC_LISTEN: 'local:/var/run/m.sock' }).listen, {
      kind: 'unix',
      path: '/var/run/m.sock',
    });
    assert.deepEqual(loadConfig({ DOMSEC_LISTEN: 'inet6:[::1]:8890' }).listen, {
      kind: 'inet',
      host: '::1',
      port: 8890,
    });
  });

  test('a bad value names the variable, the value and what is expected', () => {
    for (const [name, value] of [
      ['DOMSEC_LISTEN', 'unix:relative.sock'],
      ['DOMSEC_LISTEN', 'tcp:1.2.3.4:5'],
      ['DOMSEC_MAX_CONNECTIONS', '0'],
      ['DOMSEC_LOCAL_DOMAINS', 'example'],
      ['DOMSEC_HTTP_LISTEN', 'host:70000'],
    ]) {
      assert.throws(
        () => loadConfig({ [name!]: value }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.variable === name &&
          err.message.startsWith(`${name}=${JSON.stringify(value)}: expected `),
      );
    }
  });

  test('describeConfig marks defaults', () => {
    const lines = describeConfig({ DOMSEC_LOG_LEVEL: 'debug' });
    assert.ok(lines.includes('DOMSEC_LOG_LEVEL=debug'));
    assert.ok(lines.includes('DOMSEC_LISTEN=inet:127.0.0.1:8890  # default'));
  });

  test('the README documents every variable with its default', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const v of VARIABLES) {
      const shown = v.default === '' ? '(unset)' : `\`${v.default}\``;
      assert.ok(readme.includes(`| \`${v.name}\` | ${shown} |`), `${v.name} missing from README`);
    }
  });
});
