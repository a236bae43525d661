/** Logging: pino JSON lines on stdout. */

import { pino } from 'pino';
import type { LogLevel } from './config.js';

export type Logger = pino.Logger;

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { svc: 'domsec-milter' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination,
  );
}
