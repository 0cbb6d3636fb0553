/**
 * Gateway settings, parsed once from an environment record (the entry passes `process.env`
 * on Node, `env` bindings in Workers). Runtime-neutral: no file or network access here.
 */
import { z } from 'zod';

const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  BAMBA_HOST: z.string().min(1).optional(),
  REDIS_URL: z.string().url({ error: 'REDIS_URL must be a redis:// URL' }),
  BAMBA_REDIS_PREFIX: z.string().min(1).default('bamba'),
  BAMBA_REGION: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('local'),
  BAMBA_API_KEYS: z.string().optional(),
  BAMBA_MAX_BODY_BYTES: positiveInt.default(1024 * 1024),
  BAMBA_QUEUE_MAX_WAITING: nonNegativeInt.default(256),
  BAMBA_REQUEST_DEADLINE_MS: positiveInt.default(120_000),
  BAMBA_DEFAULT_MAX_TOKENS: positiveInt.default(512),
  BAMBA_JOB_ATTEMPTS: positiveInt.max(10).default(3),
  BAMBA_SESSION_TTL_SECONDS: positiveInt.default(86_400),
});

export interface GatewayConfig {
  port: number;
  /** Interface to listen on: 127.0.0.1 when no API keys are configured, else 0.0.0.0. */
  host: string;
  redisUrl: string;
  redisPrefix: string;
  region: string;
  /** API key → tenant. Empty: no authentication, loopback only, tenant `local`. */
  apiKeys: Map<string, string>;
  maxBodyBytes: number;
  /** Waiting jobs at which new requests get 429. */
  queueMaxWaiting: number;
  /** How long a request may take, queue wait included. */
  requestDeadlineMs: number;
  /** max_tokens when the request sets none (capped by the model's context). */
  defaultMaxTokens: number;
  jobAttempts: number;
  /** Idle sessions expire after this long (must match the gpu-nodes'). */
  sessionTtlSeconds: number;
}

/** Parse `key:tenant` pairs separated by commas or newlines; `#` starts a comment line. */
export function parseApiKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const raw of text.split(/[,\n]/)) {
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('#')) continue;
    const separator = entry.lastIndexOf(':');
    if (separator <= 0 || separator === entry.length - 1) throw new Error('BAMBA_API_KEYS entries must look like key:tenant');
    keys.set(entry.slice(0, separator), entry.slice(separator + 1));
  }
  return keys;
}

export function parseGatewayConfig(env: Record<string, string | undefined>, apiKeysFileText?: string): GatewayConfig {
  const result = schema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${issue.path.join('.')}: ${issue.message}`);
  }
  const values = result.data;
  const apiKeys = parseApiKeys([values.BAMBA_API_KEYS ?? '', apiKeysFileText ?? ''].join('\n'));
  return {
    port: values.PORT,
    host: values.BAMBA_HOST ?? (apiKeys.size === 0 ? '127.0.0.1' : '0.0.0.0'),
    redisUrl: values.REDIS_URL,
    redisPrefix: values.BAMBA_REDIS_PREFIX,
    region: values.BAMBA_REGION,
    apiKeys,
    maxBodyBytes: values.BAMBA_MAX_BODY_BYTES,
    queueMaxWaiting: values.BAMBA_QUEUE_MAX_WAITING,
    requestDeadlineMs: values.BAMBA_REQUEST_DEADLINE_MS,
    defaultMaxTokens: values.BAMBA_DEFAULT_MAX_TOKENS,
    jobAttempts: values.BAMBA_JOB_ATTEMPTS,
    sessionTtlSeconds: values.BAMBA_SESSION_TTL_SECONDS,
  };
}
