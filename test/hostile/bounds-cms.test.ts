/**
 * The CMS bounds, each at its limit (accepted) and one past it (a clear
 * typed error, no crash), with memory measured where a bound exists to save
 * it: protection layers (MAX_LAYERS), BER nesting depth, node count and
 * size (DEFAULT_ASN1_LIMITS), constructed OCTET STRING nesting, and the
 * decompression ratio and cap (DEFAULT_DECOMPRESS_LIMITS).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { CmsError, DEFAULT_ASN1_LIMITS, parseBer } from '../../src/cms/asn1.js';
import {
  createCompressedData,
  DEFAULT_DECOMPRESS_LIMITS,
  decompressCompressedData,
} from '../../src/cms/compressed.js';
import { octetStringContent } from '../../src/cms/content-info.js';
import * as der from '../../src/cms/der.js';
import { OID } from '../../src/cms/oids.js';
import { encodeBase64Lines, splitMessage } from '../../src/mime/index.js';
import { MAX_LAYERS, transformInbound } from '../../src/smime/inbound.js';
import { contentAtRatio, zeroBomb } from './bombs.js';
import { cpuSeconds } from './fuzz-budget.js';

const MiB = 1024 * 1024;
const cmsError = (code: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof CmsError && e.code === code && (pattern === undefined || pattern.test(e.message));

/** `levels` SEQUENCEs around a NULL, indefinite lengths (O(n) bytes, however deep). */
function nestedSequences(levels: number): Buffer {
  return Buffer.concat([
    Buffer.alloc(levels * 2, Buffer.from([0x30, 0x80])),
    der.nullValue(),
    Buffer.alloc(levels * 2),
  ]);
}

/** `levels` constructed OCTET STRINGs around a primitive one. */
function nestedOctetStrings(levels: number): Buffer {
  return Buffer.concat([
    Buffer.alloc(levels * 2, Buffer.from([0x24, 0x80])),
    der.octets(Buffer.from('x')),
    Buffer.alloc(levels * 2),
  ]);
}

/** A message protected by `layers` nested compressed-data layers around "hello". */
function layered(layers: number): Buffer {
  let entity = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
  for (let i = 0; i < layers; i++) {
    entity = Buffer.concat([
      Buffer.from(
        'Content-Type: application/pkcs7-mime; smime-type=compressed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n',
      ),
      encodeBase64Lines(createCompressedData(entity)),
    ]);
  }
  return Buffer.concat([Buffer.from('From: a@example.net\r\nSubject: layers\r\n'), entity]);
}

/** CompressedData around a raw zlib stream (as a sender could make it). */
function compressedDataOf(zlibStream: Buffer): Buffer {
  const body = der.seq(
    der.int(0),
    der.algorithm(OID.zlibCompress),
    der.seq(der.oid(OID.data), der.context(0, der.octets(zlibStream))),
  );
  return der.seq(der.oid(OID.compressedData), der.context(0, body));
}

/** Peak resident memory in MiB (a high-water mark for the whole process). */
const peakRssMiB = (): number => process.resourceUsage().maxRSS / 1024;

describe('bounds: CMS', () => {
  test(`protection layers: MAX_LAYERS = ${MAX_LAYERS}; 8 are unwrapped, 9 refused, 40 refused as fast`, async () => {
    assert.equal(MAX_LAYERS, 8);
    const at = await transformInbound(layered(8), { keys: [] });
    assert.ok(at.ok, at.ok ? '' : at.error.message);
    assert.equal(at.report.layers.length, 8);
    assert.ok(splitMessage(at.message).body.equals(Buffer.from('hello\r\n')));
    const past = await transformInbound(layered(9), { keys: [] });
    assert.equal(past.ok, false);
    assert.deepEqual(past.ok ? undefined : past.error, {
      code: 'malformed-cms',
      message: 'more than 8 nested protection layers',
    });
    // (Each layer adds ~5 %: the message itself grows exponentially with depth.)
    const forty = layered(40);
    const many = await cpuSeconds(() => transformInbound(forty, { keys: [] }));
    assert.equal(many.value.ok ? '' : many.value.error.code, 'malformed-cms');
    assert.ok(many.seconds < 2, `${many.seconds.toFixed(1)} s of CPU`);
  });

  test('BER nesting: maxDepth 64 below the outermost element is read, 65 is malformed, 10^5 no stack overflow', () => {
    assert.equal(DEFAULT_ASN1_LIMITS.maxDepth, 64);
    assert.ok(parseBer(nestedSequences(64), 'test'));
    assert.throws(
      () => parseBer(nestedSequences(65), 'test'),
      cmsError('malformed', /nesting depth/),
    );
    assert.throws(() => parseBer(nestedSequences(100_000), 'test'), cmsError('malformed'));
  });

  test('BER size: maxContentLength (256 MiB) refuses larger input before parsing it', () => {
    assert.equal(DEFAULT_ASN1_LIMITS.maxContentLength, 256 * MiB);
    const limits = { ...DEFAULT_ASN1_LIMITS, maxContentLength: 1000 };
    const at = der.octets(Buffer.alloc(1000 - 4));
    assert.equal(at.length, 1000);
    assert.ok(parseBer(at, 'test', limits));
    const past = der.octets(Buffer.alloc(1000 - 3));
    assert.throws(() => parseBer(past, 'test', limits), cmsError('too-large', /1001 bytes exceed/));
  });

  test('constructed OCTET STRING: 32 levels are joined, 33 are malformed', () => {
    assert.ok(
      octetStringContent(parseBer(nestedOctetStrings(32), 'test')).equals(Buffer.from('x')),
    );
    assert.throws(
      () => octetStringContent(parseBer(nestedOctetStrings(33), 'test')),
      cmsError('malformed', /nested too deep/),
    );
  });

  test('compression ratio: maxRatio 100 accepts exactly 100:1, refuses one byte more', () => {
    assert.deepEqual(DEFAULT_DECOMPRESS_LIMITS, { maxRatio: 100, maxBytes: 64 * MiB });
    const at = contentAtRatio(100);
    const zlibLength = deflateSync(at).length;
    assert.equal(at.length, 100 * zlibLength);
    assert.ok(decompressCompressedData(createCompressedData(at)).content.equals(at));
    const past = Buffer.concat([at, Buffer.alloc(1)]);
    assert.equal(
      deflateSync(past).length,
      zlibLength,
      'the same compressed size, one byte more out',
    );
    assert.throws(
      () => decompressCompressedData(createCompressedData(past)),
      cmsError('too-large', new RegExp(`beyond ${at.length} bytes`)),
    );
  });

  test('compression cap: maxBytes bounds the output whatever the ratio', () => {
    const limits = { maxRatio: 1_000_000, maxBytes: 100_000 };
    const at = Buffer.alloc(100_000, 'a');
    assert.equal(
      decompressCompressedData(createCompressedData(at), limits).content.length,
      100_000,
    );
    assert.throws(
      () => decompressCompressedData(createCompressedData(Buffer.alloc(100_001, 'a')), limits),
      cmsError('too-large', /beyond 100000 bytes/),
    );
  });

  test('a 100 MiB bomb is refused by the ratio (at 100x its ~100 KB), not inflated', async () => {
    const bomb = await zeroBomb(100);
    const limit = bomb.length * 100;
    assert.ok(limit < DEFAULT_DECOMPRESS_LIMITS.maxBytes, 'the ratio is the bound that bites');
    assert.throws(
      () => decompressCompressedData(compressedDataOf(bomb)),
      cmsError('too-large', new RegExp(`beyond ${limit} bytes`)),
    );
  });

  // Peak memory is a high-water mark: the bombs run before the node count test raises it.
  test('a 1 GiB bomb is refused without allocating it (cap 64 MiB; peak memory measured)', async (t) => {
    const bomb = await zeroBomb(1024);
    assert.ok(bomb.length < 2 * MiB, `${bomb.length} bytes expand to 1 GiB`);
    const message = Buffer.concat([
      Buffer.from(
        'Content-Type: application/pkcs7-mime; smime-type=compressed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n',
      ),
      encodeBase64Lines(compressedDataOf(bomb)),
    ]);
    const before = peakRssMiB();
    const { seconds } = await cpuSeconds(async () => {
      assert.throws(
        () => decompressCompressedData(compressedDataOf(bomb)),
        cmsError('too-large', new RegExp(`beyond ${64 * MiB} bytes`)),
      );
      // Through the inbound transform too: a typed failure, the cap is the message size limit.
      const r = await transformInbound(message, { keys: [] });
      assert.equal(r.ok ? '' : r.error.code, 'too-large');
    });
    assert.ok(seconds < 5, `${seconds.toFixed(1)} s of CPU`);
    const grown = peakRssMiB() - before;
    t.diagnostic(`1 GiB bomb (${bomb.length} bytes): peak +${grown.toFixed(0)} MiB`);
    assert.ok(grown < 400, `peak memory grew by ${grown.toFixed(0)} MiB for a 1 GiB bomb`);
  });

  test('BER node count: maxNodes 200 000; at the limit read, one more refused; time and memory bounded', async (t) => {
    assert.equal(DEFAULT_ASN1_LIMITS.maxNodes, 200_000);
    /** One SEQUENCE holding n - 1 NULLs: n elements in 2n + 6 bytes. */
    const elements = (n: number) => {
      const kids = Buffer.alloc((n - 1) * 2, der.nullValue());
      const length = Buffer.alloc(4);
      length.writeUInt32BE(kids.length);
      return Buffer.concat([Buffer.from([0x30, 0x84]), length, kids]);
    };
    const small = { ...DEFAULT_ASN1_LIMITS, maxNodes: 1000 };
    assert.ok(parseBer(elements(1000), 'test', small));
    assert.throws(
      () => parseBer(elements(1001), 'test', small),
      cmsError('malformed', /node count/),
    );
    // At the default: 400 KB of input. Before the bound was lowered, 2 000 000 took 1.9 GB and 17 s.
    const [at, past] = [elements(200_000), elements(200_001)];
    const before = peakRssMiB();
    const { seconds } = await cpuSeconds(() => {
      assert.ok(parseBer(at, 'test'));
      assert.throws(() => parseBer(past, 'test'), cmsError('malformed', /node count/));
    });
    const grown = peakRssMiB() - before;
    t.diagnostic(
      `200 000 + 200 001 elements: ${seconds.toFixed(1)} s of CPU, peak +${grown.toFixed(0)} MiB`,
    );
    assert.ok(seconds < 10, `${seconds.toFixed(1)} s of CPU`);
    assert.ok(grown < 600, `peak memory grew by ${grown.toFixed(0)} MiB`);
  });
});
