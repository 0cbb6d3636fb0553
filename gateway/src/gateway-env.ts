/** Hono context variables every route can read. */
import type { RequestLogEntry } from './request-log.js';

export interface GatewayVariables {
  /** The authenticated tenant (`local` without API keys). */
  tenant: string;
  /** The request's log line, written when the request (or its stream) ends. */
  log: RequestLogEntry;
  /** The edge sent it here because the session's home region is down (signed). */
  failover: boolean;
}
