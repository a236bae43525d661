/**
 * Where the attacker's bytes are in a captured EnvelopedData or
 * AuthEnvelopedData, found by walking the DER (src/cms/der-reader.ts), and
 * the mutations a padding-oracle or key-transport attacker builds from them.
 * Every mutation returns a new DER object; lengths are re-encoded along the
 * path when a field changes size (appended or truncated ciphertext).
 */

import assert from 'node:assert/strict';
import { derHeader } from '../../src/cms/asn1.js';
import { childrenOf, contentOf, oidText, readTlv, type Tlv } from '../../src/cms/der-reader.js';
import { OID } from '../../src/cms/oids.js';

/** The content octets of one TLV, and the child indices that lead to it from the ContentInfo. */
export interface Field {
  /** Offset of the first content octet. */
  readonly start: number;
  /** Offset just past the last content octet. */
  readonly end: number;
  readonly path: readonly number[];
}

export interface EnvelopeLayout {
  readonly kind: 'enveloped' | 'auth-enveloped';
  /** The content-encryption algorithm OID. */
  readonly contentAlgorithm: string;
  /** CBC: the IV (16 octets). GCM: the aes-nonce of GCMParameters. */
  readonly iv: Field;
  /** encryptedContent [0] IMPLICIT OCTET STRING. */
  readonly ciphertext: Field;
  /** AuthEnvelopedData's mac. */
  readonly tag?: Field;
  /** Each KeyTransRecipientInfo: its algorithm OID and its encryptedKey. */
  readonly keyTransport: readonly { readonly algorithm: string; readonly encryptedKey: Field }[];
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OCTET_STRING = 0x04;
const OBJECT_IDENTIFIER = 0x06;

function child(der: Buffer, parent: Tlv, index: number, tag: number, what: string): Tlv {
  const c = childrenOf(der, parent)[index];
  assert.ok(c, `${what}: missing`);
  assert.equal(c.tag, tag, `${what}: tag 0x${c.tag.toString(16)}`);
  return c;
}

const field = (t: Tlv, path: readonly number[]): Field => ({
  start: t.contentStart,
  end: t.end,
  path,
});

/** The layout of a DER ContentInfo holding EnvelopedData or AuthEnvelopedData. */
export function envelopeLayout(der: Buffer): EnvelopeLayout {
  const ci = readTlv(der, 0);
  assert.equal(ci.end, der.length, 'one ContentInfo fills the DER');
  const type = oidText(contentOf(der, child(der, ci, 0, OBJECT_IDENTIFIER, 'contentType')));
  assert.ok(
    type === OID.envelopedData || type === OID.authEnvelopedData,
    `not an (Auth)EnvelopedData: ${type}`,
  );
  const kind = type === OID.envelopedData ? 'enveloped' : 'auth-enveloped';
  const explicit = child(der, ci, 1, 0xa0, 'content [0]');
  const body = child(der, explicit, 0, SEQUENCE, 'EnvelopedData');
  const fields = childrenOf(der, body);
  // version, [originatorInfo [0]], recipientInfos SET, encryptedContentInfo, ...
  let i = 1;
  if (fields[i]?.tag === 0xa0) i++;
  const infosAt = i;
  const infos = child(der, body, infosAt, SET, 'recipientInfos');
  const keyTransport = childrenOf(der, infos).flatMap((ri, r) => {
    if (ri.tag !== SEQUENCE) return []; // kari, kekri, ...: not key transport
    const alg = child(der, ri, 2, SEQUENCE, 'keyEncryptionAlgorithm');
    const algorithm = oidText(contentOf(der, child(der, alg, 0, OBJECT_IDENTIFIER, 'alg OID')));
    const key = child(der, ri, 3, OCTET_STRING, 'encryptedKey');
    return [{ algorithm, encryptedKey: field(key, [1, 0, infosAt, r, 3]) }];
  });
  const eciAt = infosAt + 1;
  const eci = child(der, body, eciAt, SEQUENCE, 'encryptedContentInfo');
  const alg = child(der, eci, 1, SEQUENCE, 'contentEncryptionAlgorithm');
  const contentAlgorithm = oidText(
    contentOf(der, child(der, alg, 0, OBJECT_IDENTIFIER, 'content alg OID')),
  );
  const params = childrenOf(der, alg)[1];
  assert.ok(params, 'content-encryption parameters');
  const iv =
    params.tag === OCTET_STRING
      ? field(params, [1, 0, eciAt, 1, 1])
      : field(child(der, params, 0, OCTET_STRING, 'aes-nonce'), [1, 0, eciAt, 1, 1, 0]);
  const ciphertext = field(child(der, eci, 2, 0x80, 'encryptedContent'), [1, 0, eciAt, 2]);
  let tag: Field | undefined;
  if (kind === 'auth-enveloped') {
    const last = fields.length - 1;
    tag = field(child(der, body, last, OCTET_STRING, 'mac'), [1, 0, last]);
  }
  return { kind, contentAlgorithm, iv, ciphertext, keyTransport, ...(tag ? { tag } : {}) };
}

/** The bytes of a field (a copy). */
export const bytesOf = (der: Buffer, f: Field): Buffer => Buffer.from(der.subarray(f.start, f.end));

/** `der` with the byte at `offset` set to `value`. */
export function withByte(der: Buffer, offset: number, value: number): Buffer {
  const out = Buffer.from(der);
  out[offset] = value;
  return out;
}

/** `der` with the byte at `offset` XORed with `mask` (non-zero). */
export function flipped(der: Buffer, offset: number, mask = 0x01): Buffer {
  assert.ok(mask & 0xff, 'a flip changes the byte');
  return withByte(der, offset, der[offset]! ^ mask);
}

/** `der` with the content of the TLV at `path` replaced, every enclosing length re-encoded. */
export function withContent(der: Buffer, path: readonly number[], content: Buffer): Buffer {
  const rebuild = (tlv: Tlv, rest: readonly number[]): Buffer => {
    if (rest.length === 0) return Buffer.concat([derHeader(tlv.tag, content.length), content]);
    const kids = childrenOf(der, tlv);
    const parts = kids.map((k, i) =>
      i === rest[0] ? rebuild(k, rest.slice(1)) : der.subarray(k.start, k.end),
    );
    assert.ok(rest[0]! < kids.length, 'path within the DER');
    const inner = Buffer.concat(parts);
    return Buffer.concat([derHeader(tlv.tag, inner.length), inner]);
  };
  return rebuild(readTlv(der, 0), path);
}

/** The ciphertext's blocks of `size` octets (it must be a whole number of them). */
export function blocksOf(der: Buffer, f: Field, size = 16): Buffer[] {
  const c = der.subarray(f.start, f.end);
  assert.equal(c.length % size, 0, 'ciphertext a whole number of blocks');
  return Array.from({ length: c.length / size }, (_, i) =>
    Buffer.from(c.subarray(i * size, (i + 1) * size)),
  );
}

/**
 * CBC: blocks `first` and `first + 1` copied to the end. The new last block
 * decrypts to plaintext block `first + 1`, so its padding is valid exactly
 * when that block ends like padding: the classic one-block probe.
 */
export function withBlocksAppended(der: Buffer, layout: EnvelopeLayout, first: number): Buffer {
  const blocks = blocksOf(der, layout.ciphertext);
  assert.ok(first + 1 < blocks.length, 'two blocks to copy');
  return withContent(
    der,
    layout.ciphertext.path,
    Buffer.concat([...blocks, blocks[first]!, blocks[first + 1]!]),
  );
}

/** CBC: the last `count` blocks dropped. */
export function withBlocksTruncated(der: Buffer, layout: EnvelopeLayout, count = 1): Buffer {
  const blocks = blocksOf(der, layout.ciphertext);
  assert.ok(count < blocks.length, 'something left');
  return withContent(der, layout.ciphertext.path, Buffer.concat(blocks.slice(0, -count)));
}

/** `count` offsets spread evenly over [start, end), first and last included. */
export function spread(start: number, end: number, count: number): number[] {
  const n = end - start;
  if (count >= n) return Array.from({ length: n }, (_, i) => start + i);
  return Array.from(
    { length: count },
    (_, i) => start + Math.round((i * (n - 1)) / Math.max(1, count - 1)),
  );
}
