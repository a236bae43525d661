import assert from 'node:assert/strict';
import { createDecipheriv, createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { encryptContentSliced } from '../../src/cms/content-encryption.js';
import { digestSliced } from '../../src/cms/signature-algorithms.js';
import { hasEightBitLabel, isSevenBit } from '../../src/mime/index.js';
import { hasEightBitLabelSliced, isSevenBitSliced } from '../../src/mime/sliced.js';
import { encodeBase64LinesAfter, encodeBase64LinesAfterSliced } from '../../src/smime/wire.js';
import { concatSliced, eachSlice, SLICE_BYTES, slicesOf } from '../../src/util/slices.js';
import { turnsDuring } from '../helpers/event-loop.js';

function bytes(n: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * seed + (i >> 8)) & 0xff;
  return b;
}

/** A 7-bit text of `n` bytes in CRLF lines of `line` characters. */
function text(n: number, line = 70): Buffer {
  const out = Buffer.alloc(n, 'a');
  for (let i = line; i + 1 < n; i += line + 2) out.write('\r\n', i, 'latin1');
  return out;
}

describe('slices: large work leaves the event loop turning, small work does not yield', () => {
  test('slicesOf cuts parts into views of at most the slice size, in order', () => {
    const parts = [bytes(10), bytes(2 * SLICE_BYTES + 3), bytes(0), bytes(5)];
    const slices = [...slicesOf(parts)];
    assert.ok(slices.every((s) => s.length <= SLICE_BYTES));
    assert.deepEqual(Buffer.concat(slices), Buffer.concat(parts));
  });

  test('concatSliced equals Buffer.concat, and yields when large', async () => {
    const parts = [bytes(100), bytes(3 * SLICE_BYTES + 17, 13), bytes(SLICE_BYTES)];
    const big = await turnsDuring(() => concatSliced(parts));
    assert.deepEqual(big.value, Buffer.concat(parts));
    assert.ok(big.turns >= 3, `${big.turns} turns`);
    const small = await turnsDuring(() => concatSliced([bytes(10), bytes(20)]));
    assert.deepEqual(small.value, Buffer.concat([bytes(10), bytes(20)]));
    assert.equal(small.turns, 0);
  });

  test('eachSlice hands over every byte once', async () => {
    const parts = [bytes(SLICE_BYTES + 1), bytes(SLICE_BYTES * 2)];
    const seen: Buffer[] = [];
    await eachSlice(parts, (s) => seen.push(Buffer.from(s)));
    assert.deepEqual(Buffer.concat(seen), Buffer.concat(parts));
  });

  test('digestSliced and encryptContentSliced give what the one-shot functions give', async () => {
    const parts = [bytes(123), bytes(4 * SLICE_BYTES + 5, 3)];
    const whole = Buffer.concat(parts);
    const d = await turnsDuring(() => digestSliced('sha256', parts));
    assert.deepEqual(d.value, createHash('sha256').update(whole).digest());
    assert.ok(d.turns >= 3);
    const key = bytes(32, 11);
    for (const cipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      const e = await turnsDuring(() => encryptContentSliced(cipher, key, parts));
      assert.ok(e.turns >= 3, `${cipher}: ${e.turns} turns`);
      const ciphertext = Buffer.concat(e.value.ciphertext);
      // The IV ends the CBC AlgorithmIdentifier; the GCM nonce precedes the ICV length (02 01 10).
      const decipher =
        cipher === 'aes-256-cbc'
          ? createDecipheriv(cipher, key, e.value.algorithm.subarray(-16))
          : createDecipheriv(cipher, key, e.value.algorithm.subarray(-15, -3)).setAuthTag(
              e.value.tag!,
            );
      assert.deepEqual(Buffer.concat([decipher.update(ciphertext), decipher.final()]), whole);
    }
  });

  test('isSevenBitSliced and hasEightBitLabelSliced agree with the one-shot checks', async () => {
    const clean = text(3 * SLICE_BYTES + 1000);
    assert.equal(
      await isSevenBitSliced([Buffer.from('A: b\r\n'), Buffer.from('\r\n'), clean]),
      true,
    );
    assert.equal(isSevenBit(clean), true);
    for (const at of [10, SLICE_BYTES - 1, SLICE_BYTES, SLICE_BYTES + 1, 2 * SLICE_BYTES + 70]) {
      const bad = Buffer.from(clean);
      bad[at] = 0x0a; // a bare LF
      assert.equal(await isSevenBitSliced(bad), isSevenBit(bad), `bare LF at ${at}`);
      const high = Buffer.from(clean);
      high[at] = 0xe9;
      assert.equal(await isSevenBitSliced(high), false, `8-bit octet at ${at}`);
    }
    // A folded 8bit label whose value sits on the first line of the next slice.
    const label = Buffer.from('Content-Transfer-Encoding:\r\n 8bit\r\n');
    for (const shift of [-40, -30, -27, -2, 0, 5]) {
      const b = Buffer.from(clean);
      const at = SLICE_BYTES + shift;
      label.copy(b, at);
      assert.equal(await hasEightBitLabelSliced(b), hasEightBitLabel(b), `label at ${at}`);
      assert.equal(hasEightBitLabel(b), true);
    }
    assert.equal(await hasEightBitLabelSliced(clean), false);
  });

  test('encodeBase64LinesAfterSliced writes what encodeBase64LinesAfter writes', async () => {
    const parts = [bytes(1000), bytes(4 * SLICE_BYTES + 31, 5), bytes(2)];
    const prefix = Buffer.from('Content-Type: x\r\n\r\n');
    const s = await turnsDuring(() => encodeBase64LinesAfterSliced(prefix, parts));
    assert.deepEqual(s.value, encodeBase64LinesAfter(prefix, parts));
    assert.ok(s.turns >= 3, `${s.turns} turns`);
  });
});
