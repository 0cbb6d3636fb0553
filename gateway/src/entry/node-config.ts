/**
 * The gateway's configuration in a region (Node): the app's settings plus where the region's
 * Redis is, the HTTP listener, the relay pool and logging. Read once from the environment.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_RELAY_PRESENCE_TTL_MS, drainEnvShape, filesEnvShape, jobEnvShape, logLevelEnvShape, MIN_RELAY_PRESENCE_TTL_MS, parseEnvironment, regionConfigFrom, regionEnvShape, replicationEnvShape, type RegionConfig } from '@bamba/region';
import { z } from 'zod';
import { appConfigFrom, appEnvShape, type AppConfig } from '../config.js';

const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  ...regionEnvShape,
  ...filesEnvShape,
  ...jobEnvShape,
  ...replicationEnvShape,
  ...drainEnvShape,
  ...appEnvShape,
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  BAMBA_HOST: z.string().min(1).optional(),
  BAMBA_API_KEYS_FILE: z.string().min(1).optional(),
  BAMBA_SESSION_TTL_SECONDS: positiveInt.default(86_400),
  BAMBA_RESPONSE_TTL_SECONDS: positiveInt.default(30 * 86_400),
  BAMBA_RELAY_CONNECTIONS: positiveInt.max(64).default(4),
  BAMBA_RELAY_PRESENCE_MS: positiveInt.min(MIN_RELAY_PRESENCE_TTL_MS).default(DEFAULT_RELAY_PRESENCE_TTL_MS),
  ...logLevelEnvShape,
  BAMBA_ALLOW_NO_AUTH: z.enum(['true', 'false', '1', '0']).transform((text) => text === 'true' || text === '1').default(false),
});

/** Addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Every environment variable `bamba gateway` reads (each is also a flag). */
export const GATEWAY_ENV_VARIABLES: readonly string[] = Object.keys(schema.shape);

export interface GatewayConfig extends AppConfig {
  port: number;
  /** Interface to listen on: 127.0.0.1 when no API keys are configured, else 0.0.0.0. */
  host: string;
  region: RegionConfig;
  jobAttempts: number;
  /** Idle sessions expire after this long (kept on each session record; every commit renews it). */
  sessionTtlSeconds: number;
  /** Stored responses (the Responses API) expire this long after they were created. */
  responseTtlSeconds: number;
  /** Blocking Redis connections relaying token streams, whatever the number of streams. */
  relayConnections: number;
  /** A killed gateway's jobs stop about this long after it died (its readers' presence lapses). */
  relayPresenceMs: number;
  logLevel: string;
  /** Directory of uploaded files' contents (shared with the workers). */
  filesDir: string;
  /** Sessions are replicated to another region: a deleted or moved-away session's replica goes too. */
  replicateSessions: boolean;
  /** Serve a non-loopback interface without API keys (BAMBA_ALLOW_NO_AUTH): an explicit choice. */
  allowNoAuth: boolean;
  /** On stop, open requests may finish within this long; the rest end with a 503 / final error event. */
  drainTimeoutMs: number;
}

/** Parse the gateway's environment (reads BAMBA_API_KEYS_FILE when set). Throws naming the variable. */
export function parseGatewayConfig(env: Record<string, string | undefined>): GatewayConfig {
  const values = parseEnvironment(schema, env);
  const app = appConfigFrom(values, values.BAMBA_API_KEYS_FILE ? readFileSync(values.BAMBA_API_KEYS_FILE, 'utf8') : '');
  const host = values.BAMBA_HOST ?? (app.apiKeys.size === 0 ? '127.0.0.1' : '0.0.0.0');
  if (app.apiKeys.size === 0 && !isLoopbackHost(host) && !values.BAMBA_ALLOW_NO_AUTH) {
    throw new Error(`BAMBA_HOST: listening on ${host} without API keys would serve anyone who can reach it; set BAMBA_API_KEYS (or BAMBA_ALLOW_NO_AUTH=true if that is what you want)`);
  }
  return {
    ...app,
    port: values.PORT,
    host,
    allowNoAuth: values.BAMBA_ALLOW_NO_AUTH,
    replicateSessions: values.BAMBA_REPLICATE_SESSIONS,
    region: regionConfigFrom(values),
    jobAttempts: values.BAMBA_JOB_ATTEMPTS,
    sessionTtlSeconds: values.BAMBA_SESSION_TTL_SECONDS,
    responseTtlSeconds: values.BAMBA_RESPONSE_TTL_SECONDS,
    relayConnections: values.BAMBA_RELAY_CONNECTIONS,
    relayPresenceMs: values.BAMBA_RELAY_PRESENCE_MS,
    filesDir: values.BAMBA_FILES_DIR,
    logLevel: values.BAMBA_LOG_LEVEL,
    drainTimeoutMs: values.BAMBA_DRAIN_TIMEOUT_MS,
  };
}
