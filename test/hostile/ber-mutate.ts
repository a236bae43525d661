/**
 * Structure-aware mutation of BER/DER: the seed is read into a tree (OCTET
 * and BIT STRINGs that hold BER themselves are opened too, so an OCSP basic
 * response or an encapsulated CMS object is reached), one node is changed,
 * and the tree is written back with every enclosing length fixed up. Plain
 * byte flips mostly break the outermost length; these mutations get past it
 * to the fields behind.
 */

import fc from 'fast-check';
import { seededBytes } from './fuzz-budget.js';
import { mutations } from './mutate.js';

export interface BerNode {
  /** Identifier octets. */
  tag: Buffer;
  indefinite: boolean;
  /** Constructed: the children. */
  children?: BerNode[];
  /** OCTET/BIT STRING whose content is BER: the prefix (BIT STRING's unused-bits octet) and the tree. */
  encapsulated?: { prefix: Buffer; node: BerNode };
  /** Primitive content (also kept for encapsulated strings, unused). */
  content?: Buffer;
  /** Written as is instead of encoding the node (a mutation broke its framing on purpose). */
  raw?: Buffer;
}

const MAX_PARSE_DEPTH = 60;

/** One TLV at `at`; undefined when the bytes are not BER this reader understands. */
function readNode(
  b: Buffer,
  at: number,
  end: number,
  depth: number,
): { node: BerNode; next: number } | undefined {
  if (depth > MAX_PARSE_DEPTH || at + 2 > end) return undefined;
  let i = at + 1;
  if ((b[at]! & 0x1f) === 0x1f) {
    while (i < end && b[i]! & 0x80) i++;
    i++;
  }
  if (i >= end) return undefined;
  const tag = b.subarray(at, i);
  const constructed = (b[at]! & 0x20) !== 0;
  const first = b[i++]!;
  if (first === 0x80) {
    if (!constructed) return undefined;
    const children: BerNode[] = [];
    for (;;) {
      if (i + 2 > end) return undefined;
      if (b[i] === 0 && b[i + 1] === 0)
        return { node: { tag, indefinite: true, children }, next: i + 2 };
      const child = readNode(b, i, end, depth + 1);
      if (!child) return undefined;
      children.push(child.node);
      i = child.next;
    }
  }
  let length = first;
  if (first > 0x80) {
    const count = first & 0x7f;
    if (count > 4 || i + count > end) return undefined;
    length = 0;
    for (let k = 0; k < count; k++) length = length * 256 + b[i++]!;
  }
  const stop = i + length;
  if (stop > end) return undefined;
  if (constructed) {
    const children: BerNode[] = [];
    for (let p = i; p < stop; ) {
      const child = readNode(b, p, stop, depth + 1);
      if (!child) return undefined;
      children.push(child.node);
      p = child.next;
    }
    return { node: { tag, indefinite: false, children }, next: stop };
  }
  const content = b.subarray(i, stop);
  const node: BerNode = { tag, indefinite: false, content };
  const octets = tag.length === 1 && tag[0] === 0x04;
  const bits = tag.length === 1 && tag[0] === 0x03 && content[0] === 0;
  if ((octets || bits) && content.length > 2) {
    const prefix = content.subarray(0, bits ? 1 : 0);
    const inner = readNode(content, prefix.length, content.length, depth + 1);
    if (inner && inner.next === content.length) node.encapsulated = { prefix, node: inner.node };
  }
  return { node, next: stop };
}

/** The tree of a BER seed, or undefined when it cannot be read as one element. */
export function parseTree(bytes: Buffer): BerNode | undefined {
  const r = readNode(bytes, 0, bytes.length, 0);
  return r && r.next === bytes.length ? r.node : undefined;
}

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from([0x80 | out.length, ...out]);
}

function contentBytes(node: BerNode): Buffer {
  if (node.children) return Buffer.concat(node.children.map(encodeTree));
  if (node.encapsulated)
    return Buffer.concat([node.encapsulated.prefix, encodeTree(node.encapsulated.node)]);
  return node.content ?? Buffer.alloc(0);
}

export function encodeTree(node: BerNode): Buffer {
  if (node.raw) return node.raw;
  const content = contentBytes(node);
  if (node.indefinite && node.children)
    return Buffer.concat([node.tag, Buffer.from([0x80]), content, Buffer.from([0, 0])]);
  return Buffer.concat([node.tag, lengthOctets(content.length), content]);
}

function clone(node: BerNode): BerNode {
  return {
    ...node,
    ...(node.children ? { children: node.children.map(clone) } : {}),
    ...(node.encapsulated
      ? { encapsulated: { prefix: node.encapsulated.prefix, node: clone(node.encapsulated.node) } }
      : {}),
  };
}

interface Site {
  readonly node: BerNode;
  readonly parent: BerNode[] | undefined;
  readonly index: number;
}

function sites(root: BerNode): Site[] {
  const out: Site[] = [];
  const walk = (node: BerNode, parent: BerNode[] | undefined, index: number): void => {
    out.push({ node, parent, index });
    for (const [i, c] of (node.children ?? []).entries()) walk(c, node.children, i);
    if (node.encapsulated) walk(node.encapsulated.node, undefined, 0);
  };
  walk(root, undefined, 0);
  return out;
}

const TAGS = [
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x17, 0x18, 0x30, 0x31, 0xa0, 0xa1, 0x80, 0x24,
  0x1f,
];
const BAD_LENGTHS = [
  [0x80],
  [0x81, 0x00],
  [0x84, 0xff, 0xff, 0xff, 0xff],
  [0x84, 0x7f, 0xff, 0xff, 0xff],
  [0x85, 1, 0, 0, 0, 0],
  [0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xff],
];

/** One structural change, chosen by `kind`, at the node picked by `where`. */
type TreeEdit = readonly [kind: number, where: number, param: number, seed: number];

function applyEdit(
  root: BerNode,
  pool: readonly BerNode[],
  [kind, where, param, seed]: TreeEdit,
): void {
  const all = sites(root);
  const { node, parent, index } = all[where % all.length]!;
  switch (kind) {
    case 0: {
      // primitive content: flip a bit, or replace it by random bytes
      if (node.content && !node.encapsulated && node.content.length > 0 && param % 2 === 0) {
        const c = Buffer.from(node.content);
        c[param % c.length]! ^= 1 << (seed & 7);
        node.content = c;
      } else {
        delete node.children;
        delete node.encapsulated;
        node.content = seededBytes(seed, param % 40);
      }
      return;
    }
    case 1:
      if (parent) parent.splice(index, 1);
      return;
    case 2:
      if (parent)
        parent.splice(index, 0, ...Array.from({ length: 1 + (param % 8) }, () => clone(node)));
      return;
    case 3: {
      // replaced by a subtree of any seed
      const donor = sites(pool[param % pool.length]!);
      const picked = clone(donor[seed % donor.length]!.node);
      for (const key of Object.keys(node) as (keyof BerNode)[]) delete node[key];
      Object.assign(node, picked);
      return;
    }
    case 4:
      node.tag = Buffer.from([
        param % 3 === 0 ? TAGS[seed % TAGS.length]! : node.tag[0]! ^ (1 << (seed & 7)),
      ]);
      return;
    case 5: {
      // nested in itself: SEQUENCE or [0] wrappers, a few or many
      const depth = param % 5 === 0 ? 20 + (seed % 200) : 1 + (seed % 4);
      let inner = clone(node);
      for (let i = 0; i < depth; i++)
        inner = {
          tag: Buffer.from([param % 2 ? 0x30 : 0xa0]),
          indefinite: (seed & 1) === 1,
          children: [inner],
        };
      Object.assign(node, inner);
      return;
    }
    case 6: {
      // the node's framing broken: a length that lies, or an impossible one
      if (node.raw) return;
      const content = contentBytes(node);
      const length =
        param % 2 === 0
          ? Buffer.from(BAD_LENGTHS[seed % BAD_LENGTHS.length]!)
          : lengthOctets(Math.max(0, content.length + ((seed % 7) - 3)));
      node.raw = Buffer.concat([node.tag, length, content]);
      return;
    }
    case 7:
      if (node.children) node.indefinite = !node.indefinite;
      return;
  }
}

const treeEdit: fc.Arbitrary<TreeEdit> = fc.tuple(fc.nat(7), fc.nat(), fc.nat(), fc.nat());

/**
 * Seeds changed by 1..maxEdits structural edits, sometimes followed by byte
 * mutations (which may break the framing the tree edits kept); `seed` says
 * which seed the input came from.
 */
export function berMutatedFrom(
  seeds: readonly Buffer[],
  maxEdits = 3,
): fc.Arbitrary<{ seed: number; der: Buffer }> {
  const pool = seeds.map((s, i) => {
    const tree = parseTree(s);
    if (!tree) throw new Error(`seed ${i} is not BER the mutator can read`);
    return tree;
  });
  const byteMutations = fc.array(mutations([Buffer.from([0x30, 0x80]), Buffer.from([0, 0])]), {
    maxLength: 2,
  });
  return fc
    .tuple(
      fc.nat(seeds.length - 1),
      fc.array(treeEdit, { minLength: 1, maxLength: maxEdits }),
      fc.option(byteMutations, { freq: 4 }),
    )
    .map(([seed, edits, bytes]) => {
      const root = clone(pool[seed]!);
      for (const e of edits) applyEdit(root, pool, e);
      const der = (bytes ?? []).reduce<Buffer>((x, m) => m(x), encodeTree(root));
      return { seed, der };
    });
}

export const berMutated = (seeds: readonly Buffer[], maxEdits = 3): fc.Arbitrary<Buffer> =>
  berMutatedFrom(seeds, maxEdits).map((m) => m.der);
