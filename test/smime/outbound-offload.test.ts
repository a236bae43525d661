import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { OFFLOAD_BYTES } from '../../src/smime/offload.js';
import { BODY_PIECE_BYTES } from '../../src/smime/outbound-job.js';
import { type OffloadedBody, OutboundWorker } from '../../src/smime/outbound-offload.js';
import type { OutboundContext } from '../../src/smime/types.js';
import { startServe } from '../helpers/cli.js';
import { turnsDuring } from '../helpers/event-loop.js';
import { applyEdits, runMessage, servedMilter } from '../helpers/gateway-app.js';

/** A 7-bit text message of about `size` bytes. */
function message(size: number): Buffer {
  const head = 'From: alice@example.org\r\nTo: bob@example.net\r\nSubject: large\r\n\r\n';
  const line = 'The quick brown fox jumps over the lazy dog, again and again.\r\n';
  return Buffer.from(head + line.repeat(Math.ceil(size / line.length)), 'latin1');
}

async function piecesOf(body: OffloadedBody): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const piece of body.pieces()) out.push(piece);
  return out;
}

describe('large outbound messages in a worker thread', () => {
  let org: DomainPki;
  let net: DomainPki;
  let ctx: OutboundContext;
  before(async () => {
    [org, net] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net'),
    ]);
    ctx = {
      signer: {
        certificate: org.signing.certificate,
        chain: [org.ca.certificate],
        privateKey: org.signing.privateKey,
      },
      recipients: [{ certificate: net.encryption.certificate }],
      options: { sign: true, encrypt: true },
    };
  });

  test('the worker signs and encrypts what the receiving side decrypts and verifies; the event loop keeps turning', async () => {
    const worker = new OutboundWorker();
    try {
      const input = message(6 * 1024 * 1024);
      const { value, turns } = await turnsDuring(() => worker.transform(input, ctx));
      assert.equal(input.length, 0, 'the message was transferred, not copied');
      assert.ok(value.result.ok, JSON.stringify(!value.result.ok && value.result.error));
      // Only the header block came back; the body comes a piece at a time.
      assert.ok(value.result.message.length < 2000);
      assert.ok(value.result.message.toString('latin1').endsWith('\r\n\r\n'));
      const pieces = await piecesOf(value.body!);
      assert.ok(pieces.length > 6, `${pieces.length} pieces`);
      assert.ok(pieces.every((p) => p.length <= BODY_PIECE_BYTES && p.length > 0));
      const output = Buffer.concat([value.result.message, ...pieces]);
      assert.equal(output.length - value.result.message.length, value.body!.length);
      assert.deepEqual(value.result.report.actions, ['signed', 'encrypted']);
      // A transform on the event loop would let it turn a few dozen times (slices);
      // in the worker it turns freely while the work goes on.
      assert.ok(turns > 100, `${turns} turns of the event loop`);
      const back = await transformInbound(output, {
        keys: [{ certificate: net.encryption.certificate, privateKey: net.encryption.privateKey }],
        validator: new AnchorValidator([org.ca.certificate]),
      });
      assert.ok(back.ok);
      assert.deepEqual(back.report.actions, ['decrypted', 'verified']);
      assert.ok(back.message.includes(Buffer.from('The quick brown fox jumps over the lazy dog')));
      assert.equal(back.report.layers[1]?.signers?.[0]?.chain?.trusted, true);
      // Mail already encrypted is left as it is: no new body.
      const again = await worker.transform(output, ctx);
      assert.ok(again.result.ok);
      assert.deepEqual(again.result.report.actions, []);
      assert.equal(again.body, undefined);
    } finally {
      await worker.close();
    }
  });

  test('a body let go before it was read is gone from the worker; reading it then fails', async () => {
    const worker = new OutboundWorker();
    try {
      const r = await worker.transform(message(2 * BODY_PIECE_BYTES), ctx);
      assert.ok(r.result.ok && r.body);
      r.body.release();
      await assert.rejects(piecesOf(r.body), /lost the message body/);
      // The worker goes on with other messages.
      const next = await worker.transform(message(2 * BODY_PIECE_BYTES), ctx);
      assert.ok((await piecesOf(next.body!)).length >= 2);
    } finally {
      await worker.close();
    }
  });

  test('a failing transform is a typed failure; a stopped worker fails what it held, then starts again', async () => {
    const worker = new OutboundWorker();
    try {
      const noSigner = await worker.transform(message(1000), { ...ctx, signer: undefined });
      assert.equal(noSigner.result.ok, false);
      assert.equal(!noSigner.result.ok && noSigner.result.error.code, 'no-signer');
      const held = worker.transform(message(4 * 1024 * 1024), ctx);
      await worker.close();
      const r = await held;
      assert.equal(r.result.ok, false);
      assert.match(!r.result.ok ? r.result.error.message : '', /transform worker: .*stopped/);
      const again = await worker.transform(message(1000), ctx);
      assert.ok(again.result.ok);
      // A body half read when the worker stops: the next piece is an error, not a short body.
      const half = await worker.transform(message(3 * BODY_PIECE_BYTES), ctx);
      const reading = half.body!.pieces()[Symbol.asyncIterator]();
      // An encrypted body comes as whole base64 lines of 78 bytes (CRLF included).
      assert.equal((await reading.next()).value?.length, Math.floor(BODY_PIECE_BYTES / 78) * 78);
      await worker.close();
      await assert.rejects(reading.next(), /transform worker/);
    } finally {
      await worker.close();
    }
  });

  test('serve hands a message of OFFLOAD_BYTES or more to the worker and delivers it protected', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-offload-'));
    await writeDomainPki(join(dir, 'org'), 'example.org', org);
    writeFileSync(join(dir, 'partner.pem'), certificatePem(net.encryption.certificate));
    const serve = await startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.org',
      DOMSEC_KEYS_DIR: join(dir, 'org'),
      DOMSEC_PARTNER_CERTS: join(dir, 'partner.pem'),
    });
    try {
      const sent = message(OFFLOAD_BYTES + 4096);
      const r = await runMessage(servedMilter(serve.port), sent, {
        from: '<alice@example.org>',
        rcpts: ['<bob@example.net>'],
        address: '127.0.0.1',
      });
      assert.equal(r.decision?.type, 'accept');
      const delivered = applyEdits(sent, r.edits);
      const back = await transformInbound(delivered, {
        keys: [{ certificate: net.encryption.certificate, privateKey: net.encryption.privateKey }],
        validator: new AnchorValidator([org.ca.certificate]),
      });
      assert.ok(back.ok);
      assert.deepEqual(back.report.actions, ['decrypted', 'verified']);
      assert.match(delivered.toString('latin1', 0, 2000), /^Subject: large$/m);
      // Its log line says where it was transformed; a small one's does not.
      await runMessage(servedMilter(serve.port), message(2000), {
        from: '<alice@example.org>',
        rcpts: ['<bob@example.net>'],
        address: '127.0.0.1',
      });
      // The log line may reach us after the milter's reply: wait for it.
      const messageLines = () =>
        serve
          .output()
          .split('\n')
          .filter((l) => l.includes('"msg":"message"'));
      for (let i = 0; i < 100 && messageLines().length < 2; i++)
        await new Promise((r) => setTimeout(r, 20));
      const lines = messageLines();
      assert.equal(lines.length, 2, serve.output());
      assert.match(lines[0]!, /"offloaded":true/);
      assert.doesNotMatch(lines[1]!, /offloaded/);
    } finally {
      await serve.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
