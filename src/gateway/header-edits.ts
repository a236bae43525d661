/**
 * Milter header edits that turn the original header list into the one the
 * transform produced. Our transforms only remove fields and append new ones
 * (Content-*, MIME-Version), so a greedy in-order match suffices: unmatched
 * originals are deleted (by name and 1-based index, highest first, since the
 * MTA renumbers), unmatched new fields are added at the end.
 */

export interface Field {
  readonly name: string;
  /** The value as the MTA would store it (folding with CRLF or LF; compared loosely). */
  readonly value: string;
}

export type HeaderEdit =
  | { readonly kind: 'delete'; readonly name: string; readonly index: number }
  | { readonly kind: 'add'; readonly name: string; readonly value: string };

/** Compared unfolded (RFC 5322 2.2.3) and without surrounding space: the MTA's and ours agree then. */
function norm(f: Field): string {
  return `${f.name.toLowerCase()}:${f.value.replace(/\r?\n/g, '').trim()}`;
}

/**
 * A header value as a milter sends it: folding kept, with LF line breaks
 * (the MTA writes its own line ends), and the space after the colon
 * included when SMFIP_HDR_LEADSPC was negotiated (the MTA then adds none).
 */
export function mtaHeaderValue(value: string, leadingSpace: boolean): string {
  const body = value.replace(/\r\n/g, '\n').replace(/^[ \t]+/, '');
  return leadingSpace ? ` ${body}` : body;
}

export function headerEdits(original: readonly Field[], target: readonly Field[]): HeaderEdit[] {
  const deletes: { kind: 'delete'; name: string; index: number }[] = [];
  const matched = new Set<number>();
  const seenPerName = new Map<string, number>();
  let next = 0;
  for (const f of original) {
    const lower = f.name.toLowerCase();
    const index = (seenPerName.get(lower) ?? 0) + 1;
    seenPerName.set(lower, index);
    const key = norm(f);
    const match = target.findIndex((g, i) => i >= next && norm(g) === key);
    if (match >= 0) {
      matched.add(match);
      next = match + 1;
    } else {
      deletes.push({ kind: 'delete', name: f.name, index });
    }
  }
  // Highest index first, so no deletion renumbers one still to come.
  deletes.sort((a, b) => b.index - a.index);
  const adds: HeaderEdit[] = target.flatMap((g, i) =>
    matched.has(i) ? [] : [{ kind: 'add' as const, name: g.name, value: g.value }],
  );
  return [...deletes, ...adds];
}
