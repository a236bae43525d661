/**
 * The MIME bounds (DEFAULT_MIME_LIMITS) at the limit and one past it,
 * through the entry points the gateway calls: transformOutbound parses the
 * whole tree (7-bit conversion before signing), transformInbound the top
 * level of plain mail. Past a bound the result is a typed failure with the
 * bound in its message, never an exception; hostile extremes (10^5 levels,
 * 10^6 parts) fail as fast as the bound allows. The parser-level at/past
 * tests of the same bounds are in test/mime/limits.test.ts.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { DEFAULT_MIME_LIMITS } from '../../src/mime/index.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { TransformResult } from '../../src/smime/types.js';
import { cpuSeconds } from './fuzz-budget.js';

const MiB = 1024 * 1024;
const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const HEAD = 'From: a@example.org\r\nTo: b@example.net\r\nSubject: bounds\r\n';

let pki: DomainPki;
before(async () => {
  pki = await generateDomainPki('example.org', { algo: 'ec-p256' });
});

const sign = (message: Buffer): Promise<TransformResult> =>
  transformOutbound(message, {
    signer: { certificate: pki.signing.certificate, chain: [], privateKey: pki.signing.privateKey },
    recipients: [],
    options: { sign: true, encrypt: false },
  });

const receive = (message: Buffer): Promise<TransformResult> =>
  transformInbound(message, { keys: [] });

function assertOk(r: TransformResult): void {
  assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
}

function assertFails(r: TransformResult, code: string, message: RegExp): void {
  assert.equal(r.ok, false, 'refused');
  if (r.ok) return;
  assert.equal(r.error.code, code);
  assert.match(r.error.message, message);
}

/** 8-bit text: outbound must then read the whole tree (clean 7-bit mail is signed unparsed). */
const LEAF =
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nl\xe9af';

/** `levels` multiparts inside one another around an 8-bit text leaf. */
function nested(levels: number): Buffer {
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < levels; i++) {
    open.push(`Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`);
    close.push(`\r\n--b${i}--`);
  }
  return b(`${HEAD}${open.join('')}${LEAF}${close.reverse().join('')}\r\n`);
}

const parts = (n: number): Buffer =>
  b(
    `${HEAD}Content-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\n${LEAF}\r\n${'--p\r\n\r\nx\r\n'.repeat(n - 1)}--p--\r\n`,
  );

const headers = (n: number): Buffer => b(`${'X-Many: y\r\n'.repeat(n - 3)}${HEAD}\r\nbody\r\n`);

/** A message whose Subject field is `length` bytes unfolded (name, colon and value). */
const longField = (length: number): Buffer =>
  b(`From: a@example.org\r\nSubject: ${'s'.repeat(length - 9)}\r\n\r\nbody\r\n`);

describe('bounds: MIME, through the transforms', () => {
  test('the defaults', () => {
    assert.deepEqual(
      { ...DEFAULT_MIME_LIMITS },
      {
        maxDepth: 32,
        maxParts: 1000,
        maxHeaders: 1000,
        maxHeaderBytes: MiB,
        maxHeaderLineLength: 64 * 1024,
        maxLineLength: 100_000,
        maxSize: 64 * MiB,
      },
    );
  });

  test('header count 1000: accepted in and out; 1001 is malformed-mime', async () => {
    assertOk(await receive(headers(1000)));
    assertOk(await sign(headers(1000)));
    assertFails(await receive(headers(1001)), 'malformed-mime', /more than 1000 header fields/);
    assertFails(await sign(headers(1001)), 'malformed-mime', /more than 1000 header fields/);
  });

  test('header field length 64 KiB unfolded: accepted; one byte more is malformed-mime', async () => {
    assertOk(await receive(longField(64 * 1024)));
    assertOk(await sign(longField(64 * 1024)));
    assertFails(await receive(longField(64 * 1024 + 1)), 'malformed-mime', /longer than 65536/);
    assertFails(await sign(longField(64 * 1024 + 1)), 'malformed-mime', /longer than 65536/);
  });

  test('header block 1 MiB: accepted; one byte more is too-large', async () => {
    const block = (bytes: number) => {
      // 16 fields of 65534 bytes + CRLF = 1 MiB; the last one adjusted.
      const field = (n: number) => `X-Big: ${'v'.repeat(n - 7)}\r\n`;
      const last = bytes - 15 * 65536;
      return b(`${field(65534).repeat(15)}${field(last - 2)}\r\nbody\r\n`);
    };
    assertOk(await receive(block(MiB)));
    assertFails(await receive(block(MiB + 1)), 'too-large', /header block exceeds 1048576 bytes/);
  });

  test('MIME depth 32: signed; 33 is malformed-mime; 100 000 levels fail as fast', async () => {
    const signed = await sign(nested(32));
    assertOk(signed);
    assertFails(await sign(nested(33)), 'malformed-mime', /deeper than 32/);
    const deep = nested(100_000);
    const r = await cpuSeconds(() => sign(deep));
    assertFails(r.value, 'malformed-mime', /deeper than 32/);
    assert.ok(r.seconds < 3, `${r.seconds.toFixed(1)} s of CPU`);
    // Inbound, only multipart/signed's own two parts are read: the signed
    // content is not parsed, so its depth is the sender's business.
    assertOk(await receive(signed.ok ? signed.message : Buffer.alloc(0)));
  });

  test('part count 1000: signed; 1001 is malformed-mime; 10^6 parts fail as fast', async () => {
    assertOk(await sign(parts(1000)));
    assertFails(await sign(parts(1001)), 'malformed-mime', /more than 1000 body parts/);
    const many = parts(1_000_000);
    const r = await cpuSeconds(() => sign(many));
    assertFails(r.value, 'malformed-mime', /more than 1000 body parts/);
    assert.ok(r.seconds < 3, `${r.seconds.toFixed(1)} s of CPU`);
  });

  test('body line 100 000 bytes: signed; one byte more is malformed-mime', async () => {
    const line = (n: number) => b(`${HEAD}\r\nshort\r\n${'x'.repeat(n)}\r\n`);
    assertOk(await sign(line(100_000)));
    assertFails(await sign(line(100_001)), 'malformed-mime', /line over 100000 bytes/);
  });

  test('message size 64 MiB: accepted; one byte more is too-large', async () => {
    const message = (size: number) => {
      const m = Buffer.alloc(size, `${'x'.repeat(998)}\r\n`);
      m.write(`${HEAD}\r\n`, 0, 'latin1');
      return m;
    };
    const at = await receive(message(64 * MiB));
    assertOk(at);
    assertFails(await receive(message(64 * MiB + 1)), 'too-large', /exceeds 67108864/);
  });
});
