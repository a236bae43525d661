import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { isMainThread } from 'node:worker_threads';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import type { CertificateValidator, ChainVerdict } from '../../src/cms/verify.js';
import { splitMessage } from '../../src/mime/index.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { InboundWorker } from '../../src/smime/inbound-offload.js';
import { OFFLOAD_BYTES } from '../../src/smime/offload.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { InboundContext } from '../../src/smime/types.js';
import { verdictOf } from '../../src/smime/verdict.js';
import { startServe } from '../helpers/cli.js';
import { turnsDuring } from '../helpers/event-loop.js';
import { applyEdits, runMessage, servedMilter } from '../helpers/gateway-app.js';

/** A 7-bit text message of about `size` bytes from example.org to example.net. */
function message(size: number): Buffer {
  const head = 'From: alice@example.org\r\nTo: bob@example.net\r\nSubject: large\r\n\r\n';
  const line = 'The quick brown fox jumps over the lazy dog, again and again.\r\n';
  return Buffer.from(head + line.repeat(Math.ceil(size / line.length)), 'latin1');
}

/** A validator that says where it was asked, and how often. */
class WatchedValidator implements CertificateValidator {
  calls = 0;
  onMainThread = true;
  constructor(private readonly inner: CertificateValidator) {}
  validate(leaf: CertificateInfo, pool: readonly CertificateInfo[], at: Date) {
    this.calls++;
    this.onMainThread &&= isMainThread;
    return this.inner.validate(leaf, pool, at);
  }
}

// A worker that never answers must fail the test, not hold the run.
describe('large inbound messages in a worker thread', { timeout: 120_000 }, () => {
  let org: DomainPki;
  let net: DomainPki;
  let sealed: Buffer;
  const context = (validator: CertificateValidator): InboundContext => ({
    keys: [{ certificate: net.encryption.certificate, privateKey: net.encryption.privateKey }],
    validator,
  });
  before(async () => {
    [org, net] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net'),
    ]);
    const r = await transformOutbound(message(3 * 1024 * 1024), {
      signer: {
        certificate: org.signing.certificate,
        chain: [org.ca.certificate],
        privateKey: org.signing.privateKey,
      },
      recipients: [{ certificate: net.encryption.certificate }],
      options: { sign: true, encrypt: true },
    });
    assert.ok(r.ok);
    sealed = r.message;
    assert.ok(sealed.length > OFFLOAD_BYTES);
  });

  test('decrypts and verifies as in-process; the validator is asked on the event loop; the loop keeps turning', async () => {
    const worker = new InboundWorker();
    try {
      const here = new WatchedValidator(new AnchorValidator([org.ca.certificate]));
      const inProcess = await transformInbound(sealed, context(here));
      const there = new WatchedValidator(new AnchorValidator([org.ca.certificate]));
      const copy = Buffer.from(sealed);
      const { value: offloaded, turns } = await turnsDuring(() =>
        worker.transform(sealed, context(there)),
      );
      assert.ok(sealed.equals(copy), 'the message given stays as it was');
      assert.ok(offloaded.ok, JSON.stringify(!offloaded.ok && offloaded.error));
      assert.ok(inProcess.ok);
      assert.deepEqual(offloaded.report.actions, ['decrypted', 'verified']);
      // The same report (certificates loaded again from DER), verdict and message.
      assert.deepStrictEqual(offloaded.report, inProcess.report);
      assert.deepStrictEqual(verdictOf(offloaded.report), verdictOf(inProcess.report));
      assert.equal(verdictOf(offloaded.report).result, 'pass');
      assert.ok(offloaded.message.equals(inProcess.message));
      const signer = offloaded.report.layers[1]?.signers?.[0];
      assert.equal(signer?.chain?.trusted, true);
      assert.equal(signer?.chain?.path?.[0], org.signing.certificate);
      assert.equal(offloaded.report.layers[0]?.recipient, net.encryption.certificate);
      assert.equal(there.calls, here.calls);
      assert.ok(there.calls > 0);
      assert.equal(there.onMainThread, true);
      assert.ok(splitMessage(offloaded.message).body.includes('The quick brown fox'));
      assert.ok(turns > 100, `${turns} turns of the event loop`);
      // A message in shared memory (as the gateway takes a large one) is read there: the same.
      const shared = Buffer.from(new SharedArrayBuffer(sealed.length));
      sealed.copy(shared);
      const fromShared = await worker.transform(shared, context(there));
      assert.deepStrictEqual(fromShared, offloaded);
    } finally {
      await worker.close();
    }
  });

  test('failures are the in-process ones: not for us, a message left as it came, a validator that throws', async () => {
    const worker = new InboundWorker();
    try {
      const anchors = new AnchorValidator([org.ca.certificate]);
      const theirs: InboundContext = {
        keys: [{ certificate: org.encryption.certificate, privateKey: org.encryption.privateKey }],
        validator: anchors,
      };
      const notOurs = await worker.transform(sealed, theirs);
      assert.deepStrictEqual(notOurs, await transformInbound(sealed, theirs));
      assert.equal(!notOurs.ok && notOurs.error.code, 'not-encrypted-to-us');
      const plain = message(2 * 1024 * 1024);
      const kept = await worker.transform(plain, context(anchors));
      assert.ok(kept.ok);
      assert.equal(kept.message, plain, 'the very Buffer given, as in-process');
      const throwing: CertificateValidator = {
        validate: (): Promise<ChainVerdict> => Promise.reject(new Error('directory on fire')),
      };
      const thrown = await worker.transform(sealed, context(throwing));
      assert.deepStrictEqual(thrown, await transformInbound(sealed, context(throwing)));
      assert.deepEqual(!thrown.ok && thrown.error, {
        code: 'internal',
        message: 'directory on fire',
      });
    } finally {
      await worker.close();
    }
  });

  test('a stopped worker fails what it held, never leaves it waiting; the next one gets the keys again', async () => {
    const worker = new InboundWorker();
    try {
      // A validator that never answers: the job is in the worker when it stops.
      let asked!: () => void;
      const waiting = new Promise<void>((resolve) => {
        asked = resolve;
      });
      const stuck: CertificateValidator = {
        validate: () => {
          asked();
          return new Promise<ChainVerdict>(() => {});
        },
      };
      const held = worker.transform(sealed, context(stuck));
      // (Had the worker finished without asking, the test would fail here, not wait.)
      await Promise.race([
        waiting,
        held.then((r) => assert.fail(`done without asking the validator: ${JSON.stringify(r)}`)),
      ]);
      await worker.close();
      const r = await held;
      assert.equal(r.ok, false);
      assert.deepEqual(!r.ok && r.error.code, 'internal');
      assert.match(!r.ok ? r.error.message : '', /transform worker: .*stopped/);
      assert.equal(r.report.direction, 'inbound');
      // A new thread, which has no keys yet: they are sent again.
      const again = await worker.transform(
        sealed,
        context(new AnchorValidator([org.ca.certificate])),
      );
      assert.ok(again.ok, JSON.stringify(!again.ok && again.error));
      assert.deepEqual(again.report.actions, ['decrypted', 'verified']);
    } finally {
      await worker.close();
    }
  });

  test('serve hands an inbound message of OFFLOAD_BYTES or more, and any S/MIME one, to a worker and delivers it decrypted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'domsec-offload-in-'));
    await writeDomainPki(join(dir, 'net'), 'example.net', net);
    writeFileSync(join(dir, 'anchors.pem'), certificatePem(org.ca.certificate));
    const serve = await startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: join(dir, 'anchors.pem'),
      DOMSEC_REVOCATION: 'off',
    });
    try {
      const inbound = {
        from: '<alice@example.org>',
        rcpts: ['<bob@example.net>'],
        address: '192.0.2.25',
      };
      const r = await runMessage(servedMilter(serve.port), sealed, inbound);
      assert.equal(r.decision?.type, 'accept');
      const delivered = applyEdits(sealed, r.edits);
      const head = delivered.toString('latin1', 0, 2000);
      assert.match(head, /^Authentication-Results: [^;]+;\s+smime=pass$/m);
      assert.ok(splitMessage(delivered).body.includes('The quick brown fox'));
      // Its log line says where it was transformed.
      const offloaded = () =>
        serve
          .output()
          .split('\n')
          .filter((l) => l.includes('"msg":"message"') && l.includes('"offloaded":true'));
      for (let i = 0; i < 100 && offloaded().length < 1; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(offloaded().length, 1, serve.output());
      assert.match(offloaded()[0]!, /"direction":"inbound"/);
      // A small S/MIME message goes to a worker too (what a small CMS object
      // holds is the sender's choice); small plain mail does not.
      const small = await transformOutbound(message(2000), {
        signer: {
          certificate: org.signing.certificate,
          chain: [org.ca.certificate],
          privateKey: org.signing.privateKey,
        },
        recipients: [{ certificate: net.encryption.certificate }],
        options: { sign: true, encrypt: true },
      });
      assert.ok(small.ok && small.message.length < OFFLOAD_BYTES);
      const s = await runMessage(servedMilter(serve.port), small.message, inbound);
      assert.equal(s.decision?.type, 'accept');
      const plain = await runMessage(servedMilter(serve.port), message(2000), inbound);
      assert.equal(plain.decision?.type, 'accept');
      const lines = () =>
        serve
          .output()
          .split('\n')
          .filter((l) => l.includes('"msg":"message"'));
      for (let i = 0; i < 100 && lines().length < 3; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      const [, second, third] = lines();
      assert.match(second ?? '', /"offloaded":true/, 'the small S/MIME message');
      assert.doesNotMatch(third ?? '', /"offloaded"/, 'the plain message');
    } finally {
      await serve.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
