/**
 * The message as the MTA handed it to us, rebuilt from milter events:
 * header fields (name and value exactly as sent, folding in LF form on the
 * wire) and body chunks (CRLF already), into the RFC 5322 bytes the
 * transform works on.
 */

export interface ReceivedHeader {
  readonly name: string;
  /** The value as sent, with its leading whitespace (HDR_LEADSPC negotiated) or without. */
  readonly value: Buffer;
}

const CRLF = Buffer.from('\r\n');

/** Folded lines arrive joined by bare LF: back to CRLF for the message bytes. */
function crlfValue(value: Buffer): Buffer {
  if (!value.includes(0x0a)) return value;
  const s = value.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(s, 'latin1');
}

export function headerBytes(h: ReceivedHeader, leadingSpaceKept: boolean): Buffer {
  // Without HDR_LEADSPC the MTA stripped exactly one space after the colon.
  const sep = leadingSpaceKept ? ':' : ': ';
  return Buffer.concat([Buffer.from(`${h.name}${sep}`, 'latin1'), crlfValue(h.value), CRLF]);
}

export function assembleReceived(
  headers: readonly ReceivedHeader[],
  body: readonly Buffer[],
  leadingSpaceKept: boolean,
): Buffer {
  return Buffer.concat([...headers.map((h) => headerBytes(h, leadingSpaceKept)), CRLF, ...body]);
}
