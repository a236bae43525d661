/**
 * Byte-level mutations of real inputs, as fast-check values: delete, insert
 * (tokens of the format or random bytes), duplicate a range elsewhere, flip
 * bits, overwrite with "interesting" bytes, truncate. Several are applied in
 * a row, so an input can drift far from its seed and still look plausible.
 */

import fc from 'fast-check';

export type Mutation = (x: Buffer) => Buffer;

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff];

export function mutations(tokens: readonly Buffer[]): fc.Arbitrary<Mutation> {
  const at = (n: number, x: Buffer) => n % (x.length + 1);
  return fc.oneof(
    // delete a range
    fc.tuple(fc.nat(), fc.nat({ max: 64 })).map(
      ([p, n]): Mutation =>
        (x) => {
          const i = at(p, x);
          return Buffer.concat([x.subarray(0, i), x.subarray(i + n)]);
        },
    ),
    // insert a token of the format, or random bytes
    fc
      .tuple(
        fc.nat(),
        fc.oneof(
          fc.constantFrom(...tokens),
          fc.uint8Array({ minLength: 1, maxLength: 8 }).map((u) => Buffer.from(u)),
        ),
      )
      .map(
        ([p, insert]): Mutation =>
          (x) => {
            const i = at(p, x);
            return Buffer.concat([x.subarray(0, i), insert, x.subarray(i)]);
          },
      ),
    // copy a range of the input to another place
    fc.tuple(fc.nat(), fc.nat(), fc.nat({ max: 200 })).map(
      ([from, to, n]): Mutation =>
        (x) => {
          const s = at(from, x);
          const d = at(to, x);
          return Buffer.concat([x.subarray(0, d), x.subarray(s, s + n), x.subarray(d)]);
        },
    ),
    // flip one bit
    fc.tuple(fc.nat(), fc.nat(7)).map(
      ([p, bit]): Mutation =>
        (x) => {
          if (x.length === 0) return x;
          const y = Buffer.from(x);
          y[p % y.length]! ^= 1 << bit;
          return y;
        },
    ),
    // overwrite one byte with a boundary value
    fc.tuple(fc.nat(), fc.constantFrom(...INTERESTING)).map(
      ([p, v]): Mutation =>
        (x) => {
          if (x.length === 0) return x;
          const y = Buffer.from(x);
          y[p % y.length] = v;
          return y;
        },
    ),
    // truncate
    fc.nat().map(
      (p): Mutation =>
        (x) =>
          x.subarray(0, at(p, x)),
    ),
  );
}

/** A seed from `corpus` with 1..maxSteps mutations applied. */
export function mutated(
  corpus: readonly Buffer[],
  tokens: readonly Buffer[],
  maxSteps = 6,
): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      fc.constantFrom(...corpus),
      fc.array(mutations(tokens), { minLength: 1, maxLength: maxSteps }),
    )
    .map(([seed, ms]) => ms.reduce<Buffer>((x, m) => m(x), seed));
}
