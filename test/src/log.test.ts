// The log: JSON lines for machines, readable lines on a terminal.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger, readableDestination, readableLine } from '../../src/log.js';

function capture(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return {
    stream: new Writable({
      write(c: Buffer, _e, done) {
        chunks.push(c);
        done();
      },
    }),
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

describe('logs', () => {
  test('JSON: one line per message with its fields', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info(
      {
        queue: 'ABC123',
        direction: 'inbound',
        action: 'decrypted+verified',
        outcome: 'ok',
        ms: 12,
      },
      'message',
    );
    const line = JSON.parse(out.text().trim()) as Record<string, unknown>;
    assert.equal(line['msg'], 'message');
    assert.equal(line['queue'], 'ABC123');
    assert.equal(line['svc'], 'domsec-milter');
    assert.match(String(line['time']), /^\d{4}-\d\d-\d\dT/);
  });

  test('readable: time, level, message, then key=value, quoted when needed', () => {
    const line = readableLine(
      JSON.stringify({
        level: 40,
        time: '2026-11-23T12:00:01.123Z',
        svc: 'domsec-milter',
        msg: 'policy action',
        failure: 'decrypt-failure',
        reason: 'not encrypted to us',
        n: 3,
      }),
    );
    assert.equal(
      line,
      '12:00:01 WARN  policy action failure=decrypt-failure reason="not encrypted to us" n=3',
    );
  });

  test('readable destination: lines split across writes come out whole', () => {
    const out = capture();
    const dest = readableDestination(out.stream);
    const rec = JSON.stringify({
      level: 30,
      time: '2026-11-23T08:09:10Z',
      msg: 'milter listening',
      listen: 'inet:127.0.0.1:8890',
    });
    dest.write(rec.slice(0, 10));
    dest.write(`${rec.slice(10)}\n`);
    assert.equal(out.text(), '08:09:10 INFO  milter listening listen=inet:127.0.0.1:8890\n');
  });

  test('a line that is not JSON is passed through', () => {
    assert.equal(readableLine('plain text'), 'plain text');
  });
});
