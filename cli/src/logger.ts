/** Structured JSON log lines (pino) on stderr for the processes the CLI starts. */
import { pino, type Logger } from 'pino';

export function createLogger(name: string, level: string, fields: Record<string, unknown> = {}): Logger {
  return pino({ name, level, base: { pid: process.pid, ...fields } }, pino.destination({ fd: 2, sync: true }));
}
