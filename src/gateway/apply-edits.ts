/**
 * Turning a transform's output into milter edits: header deletions and
 * additions computed against what the MTA holds, and the new body.
 */

import type { EndOfMessage } from '../../protocol/index.js';
import { bodyOf, headerValue, sameBody, splitAdmitted } from '../mime/index.js';
import { type Field, headerEdits, mtaHeaderValue } from './header-edits.js';

/** Header fields with their raw values (folding kept), as the MTA holds them too. */
export function fieldsOf(message: Buffer): Field[] {
  return splitAdmitted(message).headers.map((f) => ({
    name: f.name,
    value: f.raw.toString('latin1', f.raw.indexOf(':') + 1),
  }));
}

/** A body for the MTA, whole or in pieces; undefined: the MTA keeps its own. */
export type NewBody = Buffer | AsyncIterable<Buffer> | undefined;

/** The body of `after` when it is not the body of `before`. */
export function changedBody(before: Buffer, after: Buffer): Buffer | undefined {
  return sameBody(before, after) ? undefined : bodyOf(after);
}

/**
 * Applies the difference between the message we got (its header fields as
 * the MTA holds them) and the one the transform made: `after` gives the
 * header fields (its header block is enough), `newBody` the body.
 */
export async function applyChanges(
  eom: EndOfMessage,
  after: Buffer,
  newBody: NewBody,
  original: readonly Field[],
  leadingSpace: boolean,
): Promise<void> {
  for (const edit of headerEdits(original, fieldsOf(after))) {
    if (edit.kind === 'delete') await eom.deleteHeader(edit.name, edit.index);
    else await eom.addHeader(edit.name, mtaHeaderValue(edit.value, leadingSpace));
  }
  if (newBody !== undefined) await eom.replaceBody(newBody);
}

/** The message without the header fields `drop` selects (by name and unfolded value); itself when none. */
export function withoutFields(
  message: Buffer,
  drop: (name: string, value: string) => boolean,
): Buffer {
  const { headers, body } = splitAdmitted(message);
  const kept = headers.filter((h) => !drop(h.name, headerValue(h)));
  if (kept.length === headers.length) return message;
  return Buffer.concat([
    ...kept.flatMap((h) => [h.raw, Buffer.from('\r\n')]),
    Buffer.from('\r\n'),
    body,
  ]);
}
