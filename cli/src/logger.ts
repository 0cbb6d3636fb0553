/** Structured JSON log lines (pino) on stderr for the processes the CLI starts. */
import { pino, type Logger } from 'pino';

export function createLogger(name: string, fields: Record<string, unknown> = {}): Logger {
  return pino({ name, level: process.env.BAMBA_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...fields } }, pino.destination({ fd: 2, sync: true }));
}
