/**
 * The set-up the security suite (test/security/) shares: we are example.net
 * (the gateway under attack, trusted network 192.0.2.0/24, authserv-id
 * mx.example.net); example.org is a partner whose mail to us an attacker
 * captured; example.com is a third domain. Plus the checks an auditor wants
 * stated once: "this secret appears nowhere in what the milter told the MTA".
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Decision, MilterClient, type Modification } from '../../protocol/index.js';
import { splitMessage } from '../../src/mime/index.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { OutboundOptions } from '../../src/smime/types.js';
import { type MilterOutcome, runMessage, startGatewayMilter } from './gateway-app.js';
import type { TestMilter } from './milter.js';

/** An SMTP client on the Internet. */
export const OUTSIDE = '198.51.100.7';
/** A client inside DOMSEC_TRUSTED_NETWORKS. */
export const INSIDE = '192.0.2.10';
export const TRUSTED_NETWORKS = '192.0.2.0/24';
export const AUTHSERV_ID = 'mx.example.net';

/** The words the attacker wants to read: they must never come out in clear where they should not. */
export const SECRET = 'The merger closes on Friday at 9; code word PLUMTREE-4471.';
export const SECRET_SUBJECT = 'Confidential PLUMTREE-4471 terms';

/** Alice's mail to Bob, Message-ID `<id@example.org>`. */
export function plainMessage(id = 'captured-1', subject = SECRET_SUBJECT, body = SECRET): Buffer {
  return Buffer.from(
    `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: ${subject}\r\nMessage-ID: <${id}@example.org>\r\n\r\n${body}\r\n`,
  );
}

export interface SecurityPki {
  /** The partner whose mail was captured. */
  readonly org: DomainPki;
  /** Us: the gateway under test. */
  readonly net: DomainPki;
  readonly com: DomainPki;
  /** A directory with anchors.pem (example.org's CA). */
  readonly dir: string;
  cleanup(): Promise<void>;
}

export async function securityPki(): Promise<SecurityPki> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-security-'));
  const [org, net, com] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
    generateDomainPki('example.com'),
  ]);
  await writeFile(join(dir, 'anchors.pem'), certificatePem(org.ca.certificate));
  return { org, net, com, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The gateway for example.net, in process, behind our MilterServer. */
export function startUs(pki: SecurityPki, env: Record<string, string> = {}): Promise<TestMilter> {
  return startGatewayMilter('example.net', pki.net, {
    DOMSEC_TRUSTED_NETWORKS: TRUSTED_NETWORKS,
    DOMSEC_TRUST_ANCHORS: join(pki.dir, 'anchors.pem'),
    DOMSEC_AUTHSERV_ID: AUTHSERV_ID,
    ...env,
  });
}

/** example.org's gateway protecting `message` for example.net (or `to`): what an eavesdropper captures. */
export async function protectedByOrg(
  pki: SecurityPki,
  message: Buffer = plainMessage(),
  options: Partial<OutboundOptions> = {},
  to: DomainPki = pki.net,
): Promise<Buffer> {
  const r = await transformOutbound(message, {
    signer: {
      certificate: pki.org.signing.certificate,
      chain: [pki.org.ca.certificate],
      privateKey: pki.org.signing.privateKey,
    },
    recipients: [{ certificate: to.encryption.certificate }],
    options: { sign: true, encrypt: true, ...options },
  });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.message;
}

export interface Envelope {
  from: string;
  rcpts: string[];
  address: string;
  authenticatedAs?: string;
}

/** One message through the gateway, with `{auth_authen}` at MAIL when the client authenticated. */
export function send(
  milter: Pick<TestMilter, 'client'>,
  message: Buffer,
  e: Envelope,
): Promise<MilterOutcome> {
  return runMessage(milter, message, {
    from: e.from,
    rcpts: e.rcpts,
    address: e.address,
    ...(e.authenticatedAs !== undefined
      ? { macros: { mail: { '{auth_authen}': e.authenticatedAs } } }
      : {}),
  });
}

/** Every byte the milter handed the MTA: header names and values, body chunks, addresses, reasons. */
export function editBytes(edits: readonly Modification[]): Buffer {
  return Buffer.concat(
    edits.map((e) => {
      switch (e.type) {
        case 'addHeader':
        case 'insertHeader':
        case 'changeHeader':
          return Buffer.concat([Buffer.from(`${e.name}:`), Buffer.from(e.value)]);
        case 'replaceBody':
          return e.chunk;
        case 'addRecipient':
        case 'deleteRecipient':
        case 'changeFrom':
          return Buffer.from(e.address);
        case 'quarantine':
          return Buffer.from(e.reason);
        default:
          return Buffer.alloc(0);
      }
    }),
  );
}

/** `text` as it could appear in a message: raw, and base64 at each of the three alignments. */
export function encodings(text: string): string[] {
  const raw = Buffer.from(text);
  const forms = [text];
  for (let shift = 0; shift < 3; shift++) {
    // The stable middle of the base64 of `text` preceded by `shift` other bytes.
    const b64 = Buffer.concat([Buffer.alloc(shift, 0x20), raw]).toString('base64');
    forms.push(b64.slice(4, -4));
  }
  return forms;
}

/** Fails if `secret` (raw or base64) is in anything the milter handed the MTA. */
export function assertNoPlaintext(o: MilterOutcome, secret: string = SECRET): void {
  const bytes = Buffer.concat([
    editBytes(o.edits),
    Buffer.from(o.decision ? JSON.stringify(o.decision) : ''),
  ]).toString('latin1');
  for (const form of encodings(secret))
    assert.ok(!bytes.includes(form), `plaintext (${form}) handed to the MTA`);
}

/** The reply as `550 5.7.1 text`, or the decision's type. */
export function replyOf(d: Decision | undefined): string | undefined {
  return d?.type === 'replyCode' ? `${d.code} ${d.xcode} ${String(d.text)}` : d?.type;
}

/** The values of the Authentication-Results fields the milter added. */
export function addedResults(o: MilterOutcome): string[] {
  return o.edits.flatMap((e) =>
    (e.type === 'insertHeader' || e.type === 'addHeader') &&
    e.name.toLowerCase() === 'authentication-results'
      ? [String(e.value)]
      : [],
  );
}

/** The replacement body, if the milter replaced it. */
export function newBody(o: MilterOutcome): Buffer | undefined {
  const chunks = o.edits.flatMap((e) => (e.type === 'replaceBody' ? [e.chunk] : []));
  return chunks.length > 0 ? Buffer.concat(chunks) : undefined;
}

/** The CMS object (DER) of a pkcs7-mime message. */
export function derOf(message: Buffer): Buffer {
  const { body } = splitMessage(message);
  return Buffer.from(body.toString('latin1'), 'base64');
}

/** The same pkcs7-mime message carrying `der` instead (base64 in 76-character lines). */
export function withDer(message: Buffer, der: Buffer): Buffer {
  const { body } = splitMessage(message);
  const head = message.subarray(0, message.length - body.length);
  const lines = der.toString('base64').match(/.{1,76}/g) ?? [];
  return Buffer.concat([head, Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1')]);
}

/** The one offset where `needle` occurs in `haystack` (fails if none or several). */
export function uniqueOffset(haystack: Buffer, needle: Buffer): number {
  const at = haystack.indexOf(needle);
  assert.ok(at >= 0, `${needle.toString('hex')} not found`);
  assert.equal(haystack.indexOf(needle, at + 1), -1, `${needle.toString('hex')} found twice`);
  return at;
}

/** A milter already running elsewhere (e.g. `domsec-milter serve`) on a loopback port, for send(). */
export function milterAt(port: number): Pick<TestMilter, 'client'> {
  return {
    async client() {
      const c = await MilterClient.connect({ kind: 'inet', host: '127.0.0.1', port });
      await c.negotiate();
      return c;
    },
  };
}
