/** The gateway's logger on Node: pino JSON lines on stderr (stdout stays free for CLI output). */
import { pino } from 'pino';
import type { GatewayLogger } from '../request-log.js';

export function createPinoLogger(level: string, name = 'gateway'): GatewayLogger {
  const logger = pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
  return {
    request: (record) => logger.info({ kind: 'request', ...record }),
    info: (message, fields) => logger.info(fields ?? {}, message),
    error: (message, error) => logger.error({ err: error }, message),
  };
}
