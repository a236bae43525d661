import { connect, type Socket } from 'node:net';

export interface SmtpReply {
  code: number;
  text: string;
}

export interface SmtpStep extends SmtpReply {
  /** The command sent ('<banner>' for the greeting, 'DATA-END' after the final dot). */
  command: string;
}

export interface SendMailOptions {
  port: number;
  host?: string;
  helo?: string;
  from: string;
  to: string[];
  /** The message; bare LF line ends are sent as CRLF, as any real client would. */
  data: Buffer | string;
  /** Whole-session limit; the session fails with an error when it is exceeded. */
  timeoutMs?: number;
}

export interface SendMailResult {
  replies: SmtpStep[];
  /** Recipients the server answered with 2xx. */
  accepted: string[];
  /** Reply to the final dot, when the message was sent. */
  dataReply?: SmtpReply;
}

/** Reads CRLF-terminated, possibly multi-line SMTP replies off a socket, in order. */
class ReplyReader {
  private buf = '';
  private lines: string[] = [];
  private readonly ready: SmtpReply[] = [];
  private waiter: ((r: SmtpReply | Error) => void) | undefined;
  private failure: Error | undefined;

  constructor(socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      this.buf += s;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl).replace(/\r$/, '');
        this.buf = this.buf.slice(nl + 1);
        this.lines.push(line);
        // "250-..." continues a reply; "250 ..." (or a bare code) ends it.
        if (line.length > 3 && line[3] === '-') continue;
        const code = Number.parseInt(line.slice(0, 3), 10);
        const text = this.lines.map((l) => l.slice(4)).join('\n');
        this.lines = [];
        this.push(Number.isNaN(code) ? new Error(`bad SMTP reply: ${line}`) : { code, text });
      }
    });
    socket.on('error', (err) => this.push(err));
    socket.on('close', () => this.push(new Error('connection closed by server')));
  }

  private push(item: SmtpReply | Error): void {
    if (item instanceof Error) {
      this.failure ??= item;
      if (this.waiter) this.waiter(item);
      this.waiter = undefined;
      return;
    }
    if (this.waiter) {
      this.waiter(item);
      this.waiter = undefined;
    } else this.ready.push(item);
  }

  next(): Promise<SmtpReply> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = (item) => (item instanceof Error ? reject(item) : resolve(item));
    });
  }
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BUF = Buffer.from('.');

/** CRLF line ends, dot-stuffing, and the final ".\r\n" (RFC 5321 4.5.2). */
export function encodeData(data: Buffer | string): Buffer {
  const input = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const parts: Buffer[] = [];
  let lineStart = 0;
  while (lineStart < input.length) {
    let nl = input.indexOf(LF, lineStart);
    if (nl < 0) nl = input.length;
    const contentEnd = nl > lineStart && input[nl - 1] === CR ? nl - 1 : nl;
    if (input[lineStart] === DOT) parts.push(DOT_BUF);
    parts.push(input.subarray(lineStart, contentEnd), CRLF);
    lineStart = nl + 1;
  }
  parts.push(Buffer.from('.\r\n'));
  return Buffer.concat(parts);
}

export async function sendMail(opts: SendMailOptions): Promise<SendMailResult> {
  const host = opts.host ?? '127.0.0.1';
  const socket = connect({ port: opts.port, host });
  socket.setNoDelay(true);
  const reader = new ReplyReader(socket);
  const result: SendMailResult = { replies: [], accepted: [] };
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`SMTP session to ${host}:${opts.port} timed out after ${timeoutMs} ms`));
      socket.destroy();
    }, timeoutMs);
  });
  deadline.catch(() => undefined);

  const step = async (command: string, payload?: string | Buffer): Promise<SmtpReply> => {
    if (payload !== undefined) socket.write(payload);
    const reply = await Promise.race([reader.next(), deadline]);
    result.replies.push({ command, ...reply });
    return reply;
  };
  const ok = (r: SmtpReply): boolean => r.code >= 200 && r.code < 400;

  try {
    // 421 (or any non-2xx greeting) means the server wants us gone: stop without QUIT.
    const banner = await step('<banner>');
    if (banner.code !== 220) return result;
    let hello = await step(
      `EHLO ${opts.helo ?? 'client.test'}`,
      `EHLO ${opts.helo ?? 'client.test'}\r\n`,
    );
    if (hello.code >= 500 && hello.code <= 504) {
      hello = await step(
        `HELO ${opts.helo ?? 'client.test'}`,
        `HELO ${opts.helo ?? 'client.test'}\r\n`,
      );
    }
    if (hello.code === 421) return result;
    const mail = await step(`MAIL FROM:<${opts.from}>`, `MAIL FROM:<${opts.from}>\r\n`);
    if (mail.code === 421) return result;
    if (ok(hello) && ok(mail)) {
      for (const rcpt of opts.to) {
        const r = await step(`RCPT TO:<${rcpt}>`, `RCPT TO:<${rcpt}>\r\n`);
        if (r.code === 421) return result;
        if (ok(r)) result.accepted.push(rcpt);
      }
    }
    if (result.accepted.length > 0) {
      const data = await step('DATA', 'DATA\r\n');
      if (data.code === 421) return result;
      if (data.code === 354) result.dataReply = await step('DATA-END', encodeData(opts.data));
      if (result.dataReply?.code === 421) return result;
    }
    await step('QUIT', 'QUIT\r\n');
    return result;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** Sends each message in its own SMTP session, `concurrency` sessions at a time; results in order. */
export async function sendMany(
  port: number,
  messages: Omit<SendMailOptions, 'port'>[],
  concurrency = 1,
): Promise<SendMailResult[]> {
  const results: SendMailResult[] = new Array(messages.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < messages.length) {
      const i = next++;
      results[i] = await sendMail({ ...messages[i]!, port });
    }
  };
  const workers = Array.from(
    { length: Math.max(1, Math.min(concurrency, messages.length)) },
    worker,
  );
  await Promise.all(workers);
  return results;
}
