/**
 * Decompression bombs built without ever holding what they expand to: a
 * zlib stream of `mebibytes` MiB of zeros is one flushed 1 MiB segment
 * repeated (Z_FULL_FLUSH resets the compressor, so the segment stands on its
 * own), closed with the Adler-32 that the whole output would have.
 */

import { once } from 'node:events';
import zlib from 'node:zlib';

export async function zeroBomb(mebibytes: number): Promise<Buffer> {
  if (mebibytes < 2) throw new Error('a bomb of at least 2 MiB');
  const zero = Buffer.alloc(1 << 20);
  const d = zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  d.on('data', (c: Buffer) => out.push(c));
  const segment = async (): Promise<Buffer> => {
    d.write(zero);
    await new Promise<void>((resolve) => d.flush(zlib.constants.Z_FULL_FLUSH, () => resolve()));
    return Buffer.concat(out.splice(0));
  };
  const first = await segment(); // with the zlib header
  const unit = await segment();
  d.end();
  await once(d, 'end');
  const tail = Buffer.concat(out.splice(0)); // final empty block + Adler-32 (of 2 MiB, replaced)
  // Adler-32 of n zero bytes: A stays 1, B adds A once per byte.
  const n = mebibytes * 2 ** 20;
  tail.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0, tail.length - 4);
  return Buffer.concat([first, ...new Array<Buffer>(mebibytes - 1).fill(unit), tail]);
}

/**
 * Content whose zlib form (deflateSync, default level) is exactly 1/ratio of
 * its size, one byte under the next plateau: at the ratio limit exactly.
 */
export function contentAtRatio(ratio: number): Buffer {
  const noise = Buffer.alloc(300);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + 13) % 251;
  const make = (length: number): Buffer =>
    Buffer.concat([noise, Buffer.alloc(Math.max(0, length - noise.length))]);
  let length = ratio * 400;
  for (let i = 0; i < 100; i++) {
    const next = ratio * zlib.deflateSync(make(length)).length;
    if (next === length) return make(length);
    length = next;
  }
  throw new Error(`no content at ratio ${ratio} found`);
}
