/**
 * The 7-bit checks of a large entity in slices (see src/util/slices.ts):
 * each slice ends on a line end, so a line is never judged in two halves.
 */

import { nextTurn, type Parts, SLICE_BYTES } from '../util/slices.js';
import { hasEightBitLabel, isSevenBit } from './encoding.js';

const CRLF = Buffer.from('\r\n');

/** Line-aligned pieces of about SLICE_BYTES (each but the last ends with CRLF). */
function* lineAlignedSlices(bytes: Buffer): Generator<Buffer> {
  let start = 0;
  while (start < bytes.length) {
    const crlf = bytes.indexOf(CRLF, start + SLICE_BYTES);
    const end = crlf < 0 ? bytes.length : crlf + 2;
    yield bytes.subarray(start, end);
    start = end;
  }
}

/**
 * isSevenBit over the concatenation of `parts`, each of which starts a line
 * (a header block ending in CRLF, the blank line, a body): a turn of the
 * event loop between slices when large.
 */
export async function isSevenBitSliced(parts: Parts): Promise<boolean> {
  let first = true;
  for (const part of Buffer.isBuffer(parts) ? [parts] : parts) {
    for (const slice of lineAlignedSlices(part)) {
      if (!first) await nextTurn();
      first = false;
      if (!isSevenBit(slice)) return false;
    }
  }
  return true;
}

/** hasEightBitLabel over each part (labels never span parts that start lines), sliced likewise. */
export async function hasEightBitLabelSliced(parts: Parts): Promise<boolean> {
  let first = true;
  for (const part of Buffer.isBuffer(parts) ? [parts] : parts) {
    let from = 0;
    for (const slice of lineAlignedSlices(part)) {
      if (!first) await nextTurn();
      first = false;
      // The whole part is passed: a folded value may continue past the slice.
      if (hasEightBitLabel(part, undefined, from, from + slice.length)) return true;
      from += slice.length;
    }
  }
  return false;
}
