// The gateway under many simultaneous MTA connections, and what an abort
// leaves behind: our MilterClient plays Postfix against the in-process
// gateway application (the socket path is the real one).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { runMessage, startGatewayMilter } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';

const CONNECTIONS = 250;
const MESSAGE = (i: number) =>
  Buffer.from(
    `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: load ${i}\r\nMessage-ID: <load-${i}@example.org>\r\n\r\nHello ${i}\r\n`,
  );

let org: DomainPki;
let milter: TestMilter;

before(async () => {
  org = await generateDomainPki('example.org');
  milter = await startGatewayMilter('example.org', org, {});
});

after(async () => {
  await milter?.close();
});

describe('concurrency and aborts', () => {
  it(`${CONNECTIONS} simultaneous connections, each signing one message: all accepted and signed`, async () => {
    const outcomes = await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, i) =>
        runMessage(milter, MESSAGE(i), {
          from: '<alice@example.org>',
          rcpts: ['<bob@example.net>'],
          address: '127.0.0.1',
        }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.decision?.type === 'accept').length, CONNECTIONS);
    const signed = outcomes.filter((o) =>
      o.edits.some(
        (e) => e.type === 'replaceBody' && e.chunk.includes('application/pkcs7-signature'),
      ),
    );
    assert.equal(signed.length, CONNECTIONS);
  });

  it('an abort mid-message frees what the message held, while the connection goes on', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const chunk = Buffer.alloc(60_000, 0x61);
    // Backing stores are released by a sweeper thread after the collection, later
    // on a loaded machine: collect and wait until the figure drops to `below`
    // (or 3 s pass; a real leak never drops).
    const external = async (below?: number) => {
      const deadline = Date.now() + (below === undefined ? 150 : 3000);
      let bytes: number;
      do {
        gc();
        await sleep(30);
        bytes = process.memoryUsage().arrayBuffers;
      } while ((below === undefined || bytes > below) && Date.now() < deadline);
      return bytes;
    };
    const baseline = await external();
    for (let round = 0; round < 3; round++) {
      const client = await milter.client();
      await client.connectEvent({ hostname: 'c', family: 'inet', port: 25, address: '127.0.0.1' });
      await client.mail('<alice@example.org>');
      await client.rcpt('<bob@example.net>');
      await client.data();
      await client.header('Subject', ' big');
      await client.endOfHeaders();
      for (let i = 0; i < 350; i++) await client.body(chunk); // ~21 MB held by the gateway
      const held = process.memoryUsage().arrayBuffers - baseline;
      client.abort();
      // The same connection carries on with a new transaction.
      assert.equal((await client.mail('<alice@example.org>'))?.type ?? 'continue', 'continue');
      const left = (await external(baseline + 3e6)) - baseline;
      client.quit();
      assert.ok(held > 15e6, `the message was held (${(held / 1e6).toFixed(1)} MB)`);
      assert.ok(left < 3e6, `after the abort ${(left / 1e6).toFixed(1)} MB are still held`);
    }
  });
});
