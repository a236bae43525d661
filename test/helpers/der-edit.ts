/**
 * DER surgery for hostile inputs: the children of the element at `path`
 * (child indices from the outermost element) replaced, and every length on
 * the way out re-encoded. Built on the position reader, so a 10 000-element
 * SET costs what concatenating it costs.
 */

import { derHeader } from '../../src/cms/asn1.js';
import { childrenOf, encodingOf, readTlv, type Tlv } from '../../src/cms/der-reader.js';

function edit(
  der: Buffer,
  t: Tlv,
  path: readonly number[],
  change: (children: Buffer[]) => Buffer[],
): Buffer[] {
  const children = childrenOf(der, t);
  const [first, ...rest] = path;
  const parts =
    first === undefined
      ? change(children.map((c) => Buffer.from(encodingOf(der, c))))
      : children.flatMap((c, i) =>
          i === first ? edit(der, c, rest, change) : [Buffer.from(encodingOf(der, c))],
        );
  const length = parts.reduce((n, p) => n + p.length, 0);
  return [derHeader(der[t.start]!, length), ...parts];
}

/** `der` with the children of the element at `path` replaced by `change(children)`. */
export function editChildren(
  der: Buffer,
  path: readonly number[],
  change: (children: Buffer[]) => Buffer[],
): Buffer {
  return Buffer.concat(edit(der, readTlv(der, 0), path, change));
}

/** The children of the element at `path`, each as its whole encoding. */
export function childrenAt(der: Buffer, path: readonly number[]): Buffer[] {
  let out: Buffer[] = [];
  editChildren(der, path, (children) => {
    out = children;
    return children;
  });
  return out;
}

/** ContentInfo -> [0] -> the SignedData or (Auth)EnvelopedData SEQUENCE. */
export const CONTENT = [1, 0] as const;
