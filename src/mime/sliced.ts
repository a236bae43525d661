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
 * Whether `test` holds for some line-aligned slice of some part, a turn of
 * the event loop between slices. `test` gets the part and where the slice
 * lies in it (a folded header value may continue past the slice).
 */
async function someSlice(
  parts: Parts,
  test: (part: Buffer, from: number, to: number) => boolean,
): Promise<boolean> {
  let first = true;
  for (const part of Buffer.isBuffer(parts) ? [parts] : parts) {
    let from = 0;
    for (const slice of lineAlignedSlices(part)) {
      if (!first) await nextTurn();
      first = false;
      if (test(part, from, from + slice.length)) return true;
      from += slice.length;
    }
  }
  return false;
}

/**
 * isSevenBit over the concatenation of `parts`, each of which starts a line
 * (a header block ending in CRLF, the blank line, a body): a turn of the
 * event loop between slices when large.
 */
export async function isSevenBitSliced(parts: Parts): Promise<boolean> {
  return !(await someSlice(parts, (part, from, to) => !isSevenBit(part.subarray(from, to))));
}

/** hasEightBitLabel over each part (labels never span parts that start lines), sliced likewise. */
export function hasEightBitLabelSliced(parts: Parts): Promise<boolean> {
  return someSlice(parts, (part, from, to) => hasEightBitLabel(part, undefined, from, to));
}
