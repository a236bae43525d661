/**
 * Who a message says wrote it: every mailbox of its From field, and its
 * Sender when present (RFC 5322 3.6.2). A signature proves a message's
 * origin only when it is bound to these (RFC 8551 3.1, RFC 8550 3, RFC 3183
 * 3.1.2), so they are read strictly: a message with no From, several From
 * or Sender fields, or one that does not parse has no authors, and nothing
 * can be bound to it. Parsing is email-addresses' RFC 5322 grammar (with
 * RFC 6532 UTF-8), so what we bind is the addr-spec a standard reader sees.
 */

import { domainToASCII } from 'node:url';
import emailAddresses from 'email-addresses';
import { findAll, type HeaderField } from '../mime/index.js';

/** An author's address, its domain in lower-case ASCII (A-labels for IDNs). */
export interface Author {
  /** `local@domain`, the local part as written. */
  readonly address: string;
  readonly local: string;
  readonly domain: string;
}

export type Authors =
  | { readonly ok: true; readonly authors: readonly Author[] }
  | { readonly ok: false; readonly problem: string };

/** A header field's unfolded value as UTF-8 (RFC 6532 allows it in addresses). */
function utf8Value(field: HeaderField): string {
  const raw = field.raw.toString('utf8');
  const value = raw.slice(raw.indexOf(':') + 1).replace(/\r?\n/g, '');
  return value.trim();
}

function author(mailbox: emailAddresses.ParsedMailbox): Author | undefined {
  const domain = domainToASCII(mailbox.domain.replace(/\.$/, ''));
  if (domain === '') return undefined;
  return { address: `${mailbox.local}@${domain}`, local: mailbox.local, domain };
}

function mailboxes(list: readonly (emailAddresses.ParsedMailbox | emailAddresses.ParsedGroup)[]) {
  return list.flatMap((a) => (a.type === 'group' ? a.addresses : [a]));
}

export function authorsOf(headers: readonly HeaderField[]): Authors {
  const from = findAll(headers, 'from');
  const sender = findAll(headers, 'sender');
  if (from.length !== 1) return { ok: false, problem: `${from.length} From fields` };
  if (sender.length > 1) return { ok: false, problem: `${sender.length} Sender fields` };
  const parsed = emailAddresses.parseFrom({ input: utf8Value(from[0]!), rfc6532: true });
  if (!parsed) return { ok: false, problem: 'the From field does not parse' };
  const found = mailboxes(parsed);
  if (sender[0]) {
    const s = emailAddresses.parseSender({ input: utf8Value(sender[0]), rfc6532: true });
    if (s?.type !== 'mailbox') return { ok: false, problem: 'the Sender field does not parse' };
    found.push(s);
  }
  const authors = found.map(author);
  if (authors.length === 0 || authors.some((a) => a === undefined))
    return { ok: false, problem: 'an author address has no usable domain' };
  return { ok: true, authors: authors as Author[] };
}
