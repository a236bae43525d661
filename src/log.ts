/**
 * Logging: pino JSON lines on stdout, one line per message handled. When
 * stdout is a terminal the same records are shown as short readable lines
 * (time, level, message, key=value); pino-pretty would pull a dozen
 * packages into the service for this, so the few lines are ours.
 */

import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { LogLevel } from './config.js';

export type Logger = pino.Logger;

const LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};
const OMIT = new Set(['level', 'time', 'msg', 'svc', 'pid', 'hostname']);

function formatValue(v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

/** One pino JSON record as a readable line: `12:00:01 INFO  message key=value ...`. */
export function readableLine(json: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof r['time'] === 'string' ? r['time'].slice(11, 19) : '';
  const level = LEVELS[r['level'] as number] ?? String(r['level']);
  const fields = Object.entries(r)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${formatValue(v)}`);
  return [time, level, String(r['msg'] ?? ''), ...fields].filter((s) => s !== '').join(' ');
}

/** A destination that writes readable lines to `out` instead of JSON. */
export function readableDestination(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) if (l !== '') out.write(`${readableLine(l)}\n`);
      done();
    },
  });
}

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const target =
    destination ?? (process.stdout.isTTY ? readableDestination(process.stdout) : undefined);
  return pino(
    { level, base: { svc: 'domsec-milter' }, timestamp: pino.stdTimeFunctions.isoTime },
    target,
  );
}
