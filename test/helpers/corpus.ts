/**
 * The real-mail corpus (test/corpus/<source>/<name>.eml) and the checks that a
 * message came out of the gateways as it went in: top-level header fields,
 * body bytes, and the decoded content of its MIME parts. The parts are read
 * with postal-mime, a parser that shares nothing with src/mime, so that a
 * misreading of a message common to both gateways (and so invisible in a
 * round trip) cannot pass for equality as well.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import PostalMime, { type Attachment, type Email } from 'postal-mime';

export const CORPUS_DIR = fileURLToPath(new URL('../../../test/corpus/', import.meta.url));

export interface CorpusMessage {
  /** `<source>/<name>`, e.g. `enmime/thunderbird-mixed`. */
  readonly name: string;
  /** The file as stored. */
  readonly raw: Buffer;
  /** As it goes over SMTP: every line ended by CRLF (see asSent). */
  readonly sent: Buffer;
}

export function loadCorpus(dir = CORPUS_DIR): CorpusMessage[] {
  const out: CorpusMessage[] = [];
  for (const source of readdirSync(dir, { withFileTypes: true })) {
    if (!source.isDirectory()) continue;
    for (const file of readdirSync(join(dir, source.name)).sort()) {
      if (!file.endsWith('.eml')) continue;
      const raw = readFileSync(join(dir, source.name, file));
      out.push({ name: `${source.name}/${file.slice(0, -4)}`, raw, sent: asSent(raw) });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The message as an SMTP client transmits it and a receiver stores it: a bare
 * LF becomes CRLF, a CR not before LF stays, and the last line is ended.
 * The same rule as encodeData in smtp-client.ts, without the dot-stuffing.
 */
export function asSent(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < data.length) {
    let nl = data.indexOf(0x0a, start);
    if (nl < 0) nl = data.length;
    const end = nl > start && data[nl - 1] === 0x0d ? nl - 1 : nl;
    parts.push(data.subarray(start, end), CRLF);
    start = nl + 1;
  }
  return Buffer.concat(parts);
}

const CRLF = Buffer.from('\r\n');

export interface Field {
  /** Lower-cased. */
  readonly name: string;
  /** Unfolded (CRLF before white space removed), as latin1, leading white space trimmed. */
  readonly value: string;
}

export interface Split {
  readonly fields: Field[];
  readonly body: Buffer;
}

/**
 * Top-level header fields and body of a CRLF message. The header section
 * ends at the first empty line, or, as Postfix reads it, at the first line
 * that is neither a field nor a continuation (the body starts there). A
 * first line that starts with white space is a field of its own.
 */
export function splitMessage(data: Buffer): Split {
  const fields: { name: string; lines: string[] }[] = [];
  let pos = 0;
  let body = data.subarray(data.length);
  while (pos < data.length) {
    let nl = data.indexOf(CRLF, pos);
    if (nl < 0) nl = data.length;
    const line = data.toString('latin1', pos, nl);
    const next = Math.min(nl + 2, data.length);
    if (line === '') {
      body = data.subarray(next);
      break;
    }
    const last = fields[fields.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.lines.push(line);
    } else {
      const colon = /^[ \t]*([^:\s][^:]*?)[ \t]*:/.exec(line);
      if (!colon) {
        body = data.subarray(pos);
        break;
      }
      fields.push({ name: colon[1]!.toLowerCase(), lines: [line] });
    }
    pos = next;
  }
  return {
    fields: fields.map((f) => {
      const text = f.lines.join('');
      return { name: f.name, value: text.slice(text.indexOf(':') + 1).replace(/^[ \t]+/, '') };
    }),
    body,
  };
}

/** Trace and authentication fields the MTAs and gateways add or consume: not compared. */
export const TRACE = /^(received|return-path|x-postfix-.*|authentication-results|dkim-.*)$/;

const show = (f: Field): string => JSON.stringify(`${f.name}: ${f.value}`).slice(0, 160);

/**
 * Differences between two header sections, as a multiset of fields (trace
 * fields left out, and those named in `exempt`).
 */
export function headerDifferences(
  sent: Field[],
  got: Field[],
  exempt: readonly string[] = [],
): string[] {
  // MIME-Version is the gateway's to write (the S/MIME entity carries none):
  // compared by its version, without the comment some mailers add to it.
  const version = (f: Field): Field =>
    f.name === 'mime-version' ? { ...f, value: f.value.replace(/\([^)]*\)/g, '').trim() } : f;
  const keep = (fs: Field[]) =>
    fs.filter((f) => !TRACE.test(f.name) && !exempt.includes(f.name)).map(version);
  const remaining = keep(got);
  const missing: Field[] = [];
  for (const f of keep(sent)) {
    const i = remaining.findIndex((g) => g.name === f.name && g.value === f.value);
    if (i >= 0) remaining.splice(i, 1);
    else missing.push(f);
  }
  const diffs: string[] = [];
  for (const f of missing) {
    const changed = remaining.findIndex((g) => g.name === f.name);
    if (changed >= 0) {
      diffs.push(`header ${f.name} changed: sent ${show(f)}, got ${show(remaining[changed]!)}`);
      remaining.splice(changed, 1);
    } else diffs.push(`header missing: ${show(f)}`);
  }
  // RFC 2045 4: a message with Content-* fields needs MIME-Version. The
  // receiving gateway cannot tell a sender that left it out from one whose
  // S/MIME entity simply carries none (most clients'), so it adds 1.0 there.
  const mimeMessage = sent.some((f) => f.name.startsWith('content-'));
  const added = remaining.filter(
    (g) =>
      !(
        g.name === 'mime-version' &&
        g.value.trim() === '1.0' &&
        mimeMessage &&
        !sent.some((f) => f.name === 'mime-version')
      ),
  );
  for (const g of added) diffs.push(`header added: ${show(g)}`);
  return diffs;
}

/**
 * Whether a message cannot go into a signature as it is (RFC 8551 3.1.1,
 * 3.1.2): its body has octets over 127, NUL, a CR or LF not in a CRLF pair,
 * or a line over 998 octets, or it declares a Content-Transfer-Encoding of
 * 8bit or binary anywhere. Such a message must be re-encoded (or relabelled)
 * for signing, so only its decoded parts can be the same afterwards, and its
 * top-level Content-Transfer-Encoding may change.
 */
export function mustReencode(message: Split): boolean {
  const declared = (text: string) =>
    /(^|\n)content-transfer-encoding:[ \t]*"?(8bit|binary)\b/i.test(text);
  if (message.fields.some((f) => declared(`${f.name}: ${f.value}`))) return true;
  return declared(message.body.toString('latin1')) || needsSevenBit(message.body);
}

/** Whether a body has octets or lines that 7-bit transport cannot carry. */
export function needsSevenBit(body: Buffer): boolean {
  let lineStart = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c > 127 || c === 0) return true;
    if (c === 0x0d && body[i + 1] !== 0x0a) return true;
    if (c === 0x0a) {
      if (body[i - 1] !== 0x0d) return true;
      if (i - 1 - lineStart > 998) return true;
      lineStart = i + 1;
    }
  }
  return body.length - lineStart > 998;
}

/** Where two buffers first differ, by line: for a failure message. */
export function firstDifference(a: Buffer, b: Buffer): string {
  const la = a.toString('latin1').split('\r\n');
  const lb = b.toString('latin1').split('\r\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) {
      const clip = (s: string | undefined) =>
        s === undefined ? '(none)' : JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
      return `body line ${i + 1}: sent ${clip(la[i])}, got ${clip(lb[i])} (sent ${la.length} lines, got ${lb.length})`;
    }
  }
  return 'bodies equal';
}

function bytesOf(c: Attachment['content']): Buffer {
  if (typeof c === 'string') return Buffer.from(c, 'utf8');
  if (c instanceof ArrayBuffer) return Buffer.from(c);
  return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

function textDifference(what: string, a: string | undefined, b: string | undefined): string[] {
  if (a === b) return [];
  if (a === undefined || b === undefined)
    return [`${what} part ${a === undefined ? 'added' : 'missing'}`];
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const clip = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 20), i + 40));
  return [
    `decoded ${what} differs at character ${i} of ${a.length}/${b.length}: sent ${clip(a)}, got ${clip(b)}`,
  ];
}

async function parse(data: Buffer): Promise<Email | Error> {
  try {
    return await PostalMime.parse(data);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Differences between the decoded content of two messages as postal-mime
 * reads them: the text and HTML it presents (the text/plain and text/html
 * leaves, charset-decoded, nested messages included), and every other leaf
 * by type, name, disposition and decoded bytes.
 */
export async function leafDifferences(sent: Buffer, got: Buffer): Promise<string[]> {
  const [a, b] = await Promise.all([parse(sent), parse(got)]);
  if (a instanceof Error || b instanceof Error) {
    if (a instanceof Error && b instanceof Error) return [];
    return [`postal-mime reads only one of them: ${(a instanceof Error ? a : b).toString()}`];
  }
  const diffs = [
    ...textDifference('text', a.text, b.text),
    ...textDifference('html', a.html, b.html),
  ];
  const describe = (x: Attachment) =>
    `${x.mimeType}${x.filename ? ` "${x.filename}"` : ''}${x.disposition ? ` (${x.disposition})` : ''}`;
  const n = Math.max(a.attachments.length, b.attachments.length);
  for (let i = 0; i < n; i++) {
    const x = a.attachments[i];
    const y = b.attachments[i];
    if (!x || !y) {
      diffs.push(`leaf ${i + 1} ${x ? `missing: ${describe(x)}` : `added: ${describe(y!)}`}`);
      continue;
    }
    if (describe(x) !== describe(y))
      diffs.push(`leaf ${i + 1} changed: sent ${describe(x)}, got ${describe(y)}`);
    const [bx, by] = [bytesOf(x.content), bytesOf(y.content)];
    if (!bx.equals(by))
      diffs.push(
        `leaf ${i + 1} ${describe(x)}: decoded content differs (${bx.length} vs ${by.length} bytes)`,
      );
  }
  return diffs;
}

export interface Comparison {
  /** Header fields missing, added or changed. */
  readonly headers: string[];
  /** 'bytes': body identical; 'decoded': re-encoded, parts identical; 'differs'. */
  readonly body: 'bytes' | 'decoded' | 'differs';
  /** Why the body is not identical (empty when it is). */
  readonly bodyNotes: string[];
}

/** Compares what arrived with what was sent (both CRLF). */
export async function compareDelivered(sent: Buffer, got: Buffer): Promise<Comparison> {
  const s = splitMessage(sent);
  const g = splitMessage(got);
  const reencode = mustReencode(s);
  const headers = headerDifferences(
    s.fields,
    g.fields,
    reencode ? ['content-transfer-encoding'] : [],
  );
  if (s.body.equals(g.body)) return { headers, body: 'bytes', bodyNotes: [] };
  const leaves = await leafDifferences(sent, got);
  const bytes = firstDifference(s.body, g.body);
  // base64 of a DER SEQUENCE with a long length: what an encrypted body starts with.
  if (
    /^MI[I-J]/.test(g.body.toString('latin1', 0, 4)) &&
    !/^MI[I-J]/.test(s.body.toString('latin1', 0, 4))
  )
    leaves.unshift('the delivered body looks like the base64 CMS object, not the message');
  if (leaves.length > 0) return { headers, body: 'differs', bodyNotes: [bytes, ...leaves] };
  if (reencode) return { headers, body: 'decoded', bodyNotes: [] };
  return {
    headers,
    body: 'differs',
    bodyNotes: [`a 7-bit body was re-encoded (decoded parts identical): ${bytes}`],
  };
}

/** The Authentication-Results fields of a message whose authserv-id is `authservId`. */
export function resultsOf(fields: Field[], authservId: string): string[] {
  return fields
    .filter((f) => f.name === 'authentication-results')
    .map((f) => f.value)
    .filter((v) => v.split(';', 1)[0]!.trim().toLowerCase() === authservId.toLowerCase());
}
