import { createServer, type Socket } from 'node:net';

/** One message as the sink received it. */
export interface SinkMessage {
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  /** Exact bytes between DATA and the final dot, dot-unstuffed, CRLF kept. */
  data: Buffer;
  /** Header fields by lower-cased name, unfolded, in order of appearance. */
  headers(): Map<string, string[]>;
  /** First value of a header field, or undefined. */
  header(name: string): string | undefined;
  /** Bytes after the blank line that ends the header section. */
  body(): Buffer;
}

export interface SmtpSinkOptions {
  port?: number;
  /** Return a full reply line (e.g. '550 5.1.1 no such user') to refuse a recipient. */
  rejectRcpt?: (addr: string) => string | undefined;
}

export interface SmtpSink {
  port: number;
  messages: SinkMessage[];
  waitFor(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

// Never the same name as the Postfix instance's myhostname: Postfix's smtp
// client treats a greeting with its own name as "mail loops back to myself".
const HOSTNAME = 'sink.test';
const MAX_LINE = 4096;
const CRLF = Buffer.from('\r\n');
const TERMINATOR = Buffer.from('\r\n.\r\n');
const STUFFED_LINE = Buffer.from('\r\n.');

export function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  let queued = 0;

  const deliver = (msg: SinkMessage): string => {
    messages.push(msg);
    for (const wake of [...waiters]) wake();
    queued += 1;
    return `250 2.0.0 Ok: queued as SINK${queued}`;
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A client vanishing mid-session is normal in tests; do not crash the runner.
    socket.on('error', () => socket.destroy());
    handleSession(socket, opts, deliver);
  });

  const waitFor = (count: number, timeoutMs = 10_000): Promise<SinkMessage[]> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (messages.length < count) return false;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(messages.slice());
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`smtp-sink: ${messages.length}/${count} messages after ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });

  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('smtp-sink: no TCP address'));
        return;
      }
      resolve({ port: address.port, messages, waitFor, close });
    });
  });
}

interface Txn {
  mailFrom: string;
  rcptTo: string[];
}

function handleSession(
  socket: Socket,
  opts: SmtpSinkOptions,
  deliver: (msg: SinkMessage) => string,
): void {
  let helo = '';
  let txn: Txn | undefined;
  let inData = false;
  let quitting = false;
  // Command mode: bytes not yet forming a complete line.
  let pending: Buffer = Buffer.alloc(0);
  // Data mode: chunks are kept as received and joined once per message, so a
  // multi-MB message costs O(size) rather than O(lines).
  let chunks: Buffer[] = [];
  let dataLen = 0;
  // Last <= 4 bytes of "\r\n" + data so far: lets the terminator be found when
  // it is split across reads. The virtual leading CRLF (the one ending the DATA
  // line) makes an immediate ".\r\n" terminate an empty message.
  let tail: Buffer = CRLF;

  const reply = (text: string): void => {
    if (!socket.destroyed) socket.write(`${text}\r\n`);
  };

  // Returns the reply text for one command line.
  const command = (line: string): string => {
    const verb = (line.split(' ', 1)[0] ?? '').toUpperCase();
    const arg = line.slice(verb.length).trim();
    switch (verb) {
      case 'EHLO':
        helo = arg;
        txn = undefined;
        return `250-${HOSTNAME}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 209715200`;
      case 'HELO':
        helo = arg;
        txn = undefined;
        return `250 ${HOSTNAME}`;
      case 'MAIL': {
        const addr = /^FROM:\s*<([^>]*)>/i.exec(arg)?.[1];
        if (!helo) return '503 5.5.1 Error: send HELO/EHLO first';
        if (txn) return '503 5.5.1 Error: nested MAIL command';
        if (addr === undefined) return '501 5.5.4 Syntax: MAIL FROM:<address>';
        txn = { mailFrom: addr, rcptTo: [] };
        return '250 2.1.0 Ok';
      }
      case 'RCPT': {
        const addr = /^TO:\s*<([^>]*)>/i.exec(arg)?.[1];
        if (!txn) return '503 5.5.1 Error: need MAIL command';
        if (!addr) return '501 5.5.4 Syntax: RCPT TO:<address>';
        const refusal = opts.rejectRcpt?.(addr);
        if (refusal) return refusal;
        txn.rcptTo.push(addr);
        return '250 2.1.5 Ok';
      }
      case 'DATA':
        if (!txn) return '503 5.5.1 Error: need MAIL command';
        if (txn.rcptTo.length === 0) return '554 5.5.1 Error: no valid recipients';
        inData = true;
        chunks = [];
        dataLen = 0;
        tail = CRLF;
        return '354 End data with <CR><LF>.<CR><LF>';
      case 'RSET':
        txn = undefined;
        return '250 2.0.0 Ok';
      case 'NOOP':
        return '250 2.0.0 Ok';
      case 'QUIT':
        quitting = true;
        return '221 2.0.0 Bye';
      default:
        return '502 5.5.2 Error: command not recognized';
    }
  };

  // Consumes data-mode bytes; returns the bytes after the terminator, or
  // undefined when the message is not complete yet.
  const feedData = (chunk: Buffer): Buffer | undefined => {
    const window = Buffer.concat([tail, chunk]);
    const idx = window.indexOf(TERMINATOR);
    if (idx < 0) {
      chunks.push(chunk);
      dataLen += chunk.length;
      tail = Buffer.from(window.subarray(Math.max(0, window.length - 4)));
      return undefined;
    }
    // Offset of window[0] in the stream "\r\n" + data; the content ends right
    // after the CRLF that starts the terminator, i.e. at data offset `pos`.
    const pos = 2 + dataLen - tail.length + idx;
    chunks.push(chunk);
    const raw = Buffer.concat(chunks, dataLen + chunk.length).subarray(0, pos);
    const rest = chunk.subarray(pos + 3 - dataLen);
    chunks = [];
    inData = false;
    const current = txn!;
    txn = undefined;
    reply(deliver(makeMessage(helo, current, unstuff(raw))));
    return rest;
  };

  const feedCommands = (chunk: Buffer): Buffer | undefined => {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) break;
      const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
      buf = buf.subarray(nl + 1);
      reply(command(line));
      if (quitting) {
        socket.end();
        return undefined;
      }
      if (inData) {
        pending = Buffer.alloc(0);
        return buf;
      }
    }
    if (buf.length > MAX_LINE) {
      reply('500 5.5.2 Error: line too long');
      socket.destroy();
      buf = Buffer.alloc(0);
    }
    pending = Buffer.from(buf);
    return undefined;
  };

  reply(`220 ${HOSTNAME} ESMTP domsec test sink`);
  socket.on('data', (input: Buffer) => {
    let chunk: Buffer | undefined = input;
    // Pipelined input may switch modes several times within one read.
    while (chunk && chunk.length > 0 && !socket.destroyed && !quitting) {
      chunk = inData ? feedData(chunk) : feedCommands(chunk);
    }
  });
}

/** Remove one leading dot from every line that starts with one (RFC 5321 4.5.2). */
function unstuff(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  if (raw[0] === 0x2e) start = 1;
  let from = start;
  for (;;) {
    const idx = raw.indexOf(STUFFED_LINE, from);
    if (idx < 0) break;
    parts.push(raw.subarray(start, idx + 2));
    start = idx + 3;
    from = start;
  }
  if (parts.length === 0) return start === 0 ? raw : raw.subarray(start);
  parts.push(raw.subarray(start));
  return Buffer.concat(parts);
}

function makeMessage(helo: string, txn: Txn, data: Buffer): SinkMessage {
  const split = data.indexOf('\r\n\r\n');
  const headerEnd = split < 0 ? data.length : split + 2;
  const bodyStart = split < 0 ? data.length : split + 4;
  let parsed: Map<string, string[]> | undefined;
  const headers = (): Map<string, string[]> => {
    if (parsed) return parsed;
    parsed = new Map();
    // Unfold: a CRLF followed by whitespace continues the previous field.
    const text = data
      .subarray(0, headerEnd)
      .toString('utf8')
      .replace(/\r\n(?=[ \t])/g, '');
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const list = parsed.get(name) ?? [];
      list.push(line.slice(colon + 1).trim());
      parsed.set(name, list);
    }
    return parsed;
  };
  return {
    helo,
    mailFrom: txn.mailFrom,
    rcptTo: txn.rcptTo,
    data,
    headers,
    header: (name) => headers().get(name.toLowerCase())?.[0],
    body: () => data.subarray(bodyStart),
  };
}
