/** `domsec-milter transform` between two domains made with `domsec-milter keygen`, checked by openssl. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, runCli } from '../helpers/cli.js';
import { cmsDecrypt, cmsVerify } from '../helpers/openssl.js';

function transform(args: string[], env: Record<string, string>, input: Buffer) {
  return new Promise<{ code: number | null; stdout: Buffer; report: Record<string, unknown> }>(
    (resolve) => {
      const child = spawn(process.execPath, [CLI, 'transform', ...args], {
        env: { PATH: process.env['PATH'] ?? '', ...env },
      });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('close', (code) =>
        resolve({ code, stdout: Buffer.concat(out), report: JSON.parse(err || '{}') }),
      );
      child.stdin.end(input);
    },
  );
}

const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: hello\r\n\r\nHello Bob.\r\n',
);

describe('domsec-milter transform', () => {
  let dir: string;
  let org: Record<string, string>;
  let net: Record<string, string>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'domsec-transform-'));
    for (const d of ['example.org', 'example.net']) {
      const r = await runCli(['keygen', '--domain', d, '--out', join(dir, d)]);
      assert.equal(r.code, 0, r.stderr);
    }
    await mkdir(join(dir, 'partners'));
    await copyFile(
      join(dir, 'example.net/example.net.encrypt.crt.pem'),
      join(dir, 'partners/example.net.pem'),
    );
    org = {
      DOMSEC_KEYS_DIR: join(dir, 'example.org'),
      DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
    };
    net = {
      DOMSEC_KEYS_DIR: join(dir, 'example.net'),
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_TRUST_ANCHORS: join(dir, 'example.org/ca/example.org.ca.crt.pem'),
    };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('outbound signs and encrypts; openssl decrypts and verifies; inbound restores the message', async () => {
    const out = await transform(['--direction', 'outbound'], org, MESSAGE);
    assert.equal(out.code, 0, JSON.stringify(out.report));
    assert.deepEqual(out.report['actions'], ['signed', 'encrypted']);
    const key = {
      certPath: join(dir, 'example.net/example.net.encrypt.crt.pem'),
      keyPath: join(dir, 'example.net/example.net.encrypt.key.pem'),
    };
    const decrypted = await cmsDecrypt(out.stdout, key);
    assert.ok(decrypted.ok, decrypted.stderr);
    const verified = await cmsVerify(decrypted.content, {
      caFile: join(dir, 'example.org/ca/example.org.ca.crt.pem'),
    });
    assert.ok(verified.ok, verified.stderr);
    assert.match(verified.content.toString(), /Hello Bob\./);
    const back = await transform(['--direction', 'inbound'], net, out.stdout);
    assert.equal(back.code, 0);
    assert.match(
      back.stdout.toString(),
      /^From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: hello\r\n/,
    );
    assert.ok(back.stdout.toString().endsWith('\r\n\r\nHello Bob.\r\n'));
    const layers = back.report['layers'] as {
      kind: string;
      signers?: { valid: boolean; chain: { trusted: boolean } }[];
    }[];
    assert.deepEqual(
      layers.map((l) => l.kind),
      ['enveloped', 'signed-detached'],
    );
    assert.deepEqual(
      layers[1]!.signers!.map((s) => [s.valid, s.chain.trusted]),
      [[true, true]],
    );
  });

  test('required encryption without a certificate fails with exit 1 and the reason', async () => {
    const r = await transform(
      ['--direction', 'outbound', '--to', 'carol@example.com'],
      { ...org, DOMSEC_OUTBOUND_ENCRYPT: 'required' },
      MESSAGE,
    );
    assert.equal(r.code, 1);
    assert.deepEqual(r.report['error'], {
      code: 'no-certificate',
      message: 'encryption required but no usable certificate for example.com',
    });
    assert.equal(r.stdout.length, 0);
  });

  test('a bad direction is a usage error', async () => {
    const r = await runCli(['transform', '--direction', 'sideways']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /transform needs --direction outbound or --direction inbound/);
  });
});
