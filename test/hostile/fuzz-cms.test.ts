/**
 * CMS parsing against 10^5 hostile inputs per target (full run): structure-
 * aware mutations of real CMS (public vectors, our output, openssl output)
 * and of whole S/MIME messages. Only CmsError may escape the CMS layer;
 * transformInbound never throws and never fails with 'internal' (which
 * would mean an untyped error got through). Whatever verifies or decrypts
 * with integrity must be content that some seed really carried.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { CmsError } from '../../src/cms/asn1.js';
import { decompressCompressedData } from '../../src/cms/compressed.js';
import { parseContentInfo, peekContentType } from '../../src/cms/content-info.js';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { splitMessage } from '../../src/mime/index.js';
import { transformInbound, UNREADABLE_CONTENT } from '../../src/smime/inbound.js';
import { berMutated, berMutatedFrom } from './ber-mutate.js';
import { buildCmsCorpus, type CmsCorpus, fillSlot } from './cms-corpus.js';
import { fuzz, fuzzAsync, fuzzRuns } from './fuzz-budget.js';
import { MIME_TOKENS } from './mime-corpus.js';
import { mutated } from './mutate.js';

let corpus: CmsCorpus;
before(async () => {
  corpus = await buildCmsCorpus();
});

function onlyCmsErrors<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    assert.ok(e instanceof CmsError, `escaped: ${e instanceof Error ? e.stack : String(e)}`);
    assert.ok(e.message.length > 0);
    return undefined;
  }
}

async function onlyCmsErrorsAsync<T>(f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    assert.ok(e instanceof CmsError, `escaped: ${e instanceof Error ? e.stack : String(e)}`);
    return undefined;
  }
}

/** How many inputs got through: a fuzzer that only ever hits errors proves little. */
const reached = { parsed: 0, verified: 0, validSigner: 0, decrypted: 0, inboundOk: 0, layers: 0 };

describe('fuzz: CMS parsing (10^5 inputs per target in the full run)', () => {
  test('parseContentInfo and peekContentType', (t) => {
    const seeds = [...corpus.signed.map((s) => s.der), ...corpus.enveloped, ...corpus.compressed];
    fuzz(t, 'cms/content-info', fuzzRuns(100_000, 500), [berMutated(seeds)], (der) => {
      const ci = onlyCmsErrors(() => parseContentInfo(der));
      if (ci) {
        reached.parsed++;
        // asn1js writes arcs beyond 2^53 in its own notation: any text, never a throw.
        assert.ok(ci.contentType.length > 0);
      }
      onlyCmsErrors(() => peekContentType(der));
    });
    assert.ok(reached.parsed > 0);
  });

  test('verifySignedData: a valid signer means content a seed really carried', async (t) => {
    const seeds = corpus.signed;
    await fuzzAsync(
      t,
      'cms/verify',
      fuzzRuns(100_000, 400),
      [berMutatedFrom(seeds.map((s) => s.der))],
      async ({ seed, der }) => {
        const detached = seeds[seed]!.detached;
        const v = await onlyCmsErrorsAsync(() =>
          verifySignedData(der, {
            validator: corpus.validator,
            ...(detached ? { detachedContent: detached } : {}),
          }),
        );
        if (!v) return;
        reached.verified++;
        for (const s of v.signers) {
          if (!s.valid) continue;
          reached.validSigner++;
          assert.ok(
            corpus.contents.has(v.content.toString('latin1')),
            'valid over foreign content',
          );
        }
      },
    );
    assert.ok(reached.verified > 0 && reached.validSigner > 0, JSON.stringify(reached));
  });

  test('decryptEnvelope: authenticated content is content a seed really carried', (t) => {
    fuzz(t, 'cms/decrypt', fuzzRuns(100_000, 400), [berMutated(corpus.enveloped)], (der) => {
      const r = onlyCmsErrors(() => decryptEnvelope(der, corpus.keys));
      if (!r) return;
      reached.decrypted++;
      if (r.authenticated)
        assert.ok(corpus.contents.has(r.content.toString('latin1')), 'AEAD over foreign content');
    });
    assert.ok(reached.decrypted > 0);
  });

  test('decompressCompressedData', (t) => {
    fuzz(t, 'cms/decompress', fuzzRuns(100_000, 400), [berMutated(corpus.compressed)], (der) => {
      const r = onlyCmsErrors(() => decompressCompressedData(der));
      if (r) assert.ok(r.content.length <= 64 * 1024 * 1024);
    });
  });

  test('transformInbound never throws, fails only with typed codes, outputs readable mail', async (t) => {
    const slotted = fc
      .tuple(fc.nat(corpus.slots.length - 1), fc.nat())
      .chain(([i]) =>
        berMutated([corpus.slots[i]!.der]).map((der) => fillSlot(corpus.slots[i]!, der)),
      );
    const input = fc.oneof(slotted, mutated(corpus.messages, MIME_TOKENS, 4));
    const ctx = { keys: corpus.keys, validator: corpus.validator };
    await fuzzAsync(
      t,
      'cms/transform-inbound',
      fuzzRuns(100_000, 400),
      [input],
      async (message) => {
        const r = await transformInbound(message, ctx);
        assert.ok(r.report.layers.length <= 8);
        reached.layers += r.report.layers.length;
        if (!r.ok) {
          assert.notEqual(r.error.code, 'internal', `untyped failure: ${r.error.message}`);
          return;
        }
        reached.inboundOk++;
        // Readable mail, unless the sender's own content under the layers was
        // not (it is then delivered as written, and the report says so).
        if (!r.report.notes.includes(UNREADABLE_CONTENT)) splitMessage(r.message);
      },
    );
    assert.ok(reached.inboundOk > 0 && reached.layers > 0, JSON.stringify(reached));
  });
});
