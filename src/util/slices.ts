/**
 * Long synchronous work on large messages, cut into slices with a turn of
 * the event loop between them: hashing, encrypting or copying 25 MB at once
 * stalls every other connection for tens of milliseconds. Inputs of one
 * slice or less never yield, so small messages pay nothing.
 */

/**
 * Bytes handled between two yields: a fraction of a millisecond of hashing,
 * encryption or copying on an idle core. Under load a 1 MiB slice took up
 * to 10 ms of wall time, and a small message waits behind one slice at each
 * of its round trips; 256 KiB kept their p99 within twice the unloaded one.
 */
export const SLICE_BYTES = 256 * 1024;

export type Parts = Buffer | readonly Buffer[];

export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function totalLength(parts: Parts): number {
  if (Buffer.isBuffer(parts)) return parts.length;
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/** The parts cut into views of at most `size` bytes (no copy). */
export function* slicesOf(parts: Parts, size = SLICE_BYTES): Generator<Buffer> {
  for (const p of Buffer.isBuffer(parts) ? [parts] : parts) {
    for (let off = 0; off < p.length; off += size) yield p.subarray(off, off + size);
  }
}

/**
 * Feeds the parts to `consume` slice by slice, yielding between slices when
 * the whole is larger than one slice.
 */
export async function eachSlice(parts: Parts, consume: (slice: Buffer) => void): Promise<void> {
  if (totalLength(parts) <= SLICE_BYTES) {
    for (const p of Buffer.isBuffer(parts) ? [parts] : parts) consume(p);
    return;
  }
  let first = true;
  for (const slice of slicesOf(parts)) {
    if (!first) await nextTurn();
    first = false;
    consume(slice);
  }
}

/**
 * Buffer.concat, copying one slice per turn when large; into a
 * SharedArrayBuffer with `shared` (for a worker thread to read, uncopied).
 */
export async function concatSliced(parts: readonly Buffer[], shared = false): Promise<Buffer> {
  const total = totalLength(parts);
  if (total <= SLICE_BYTES && !shared) return Buffer.concat(parts, total);
  const out = shared ? Buffer.from(new SharedArrayBuffer(total)) : Buffer.allocUnsafe(total);
  let pos = 0;
  await eachSlice(parts, (slice) => {
    pos += slice.copy(out, pos);
  });
  return out;
}
