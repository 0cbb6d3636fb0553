/**
 * Recognising "Redis is not reachable" among client errors, so that an outage becomes a 503
 * with `Retry-After` for the client (and a retryable error for a job) instead of a 500.
 */
import { BambaError, ServiceUnavailableError } from '@bamba/shared';

const CONNECTION_FAILURE = /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Stream isn't writeable|enableOfflineQueue|Reached the max retries|CLUSTERDOWN|LOADING|Failed to refresh slots cache|None of startup nodes is available|Connection in subscriber mode|MASTERDOWN/;

/** The 503 an outage of the region's Redis maps to, or null when `error` is something else. */
export function redisOutageError(error: unknown): BambaError | null {
  if (error instanceof BambaError || !(error instanceof Error)) return null;
  if (error.name !== 'MaxRetriesPerRequestError' && !CONNECTION_FAILURE.test(error.message)) return null;
  return new ServiceUnavailableError("the region's Redis is unreachable; retry shortly", { code: 'redis_unavailable', retryAfterSeconds: 2, cause: error });
}
