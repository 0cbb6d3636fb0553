/**
 * The app's settings, whatever runtime serves it: authentication, limits and defaults. Each
 * entry merges `appEnvShape` into its own environment schema (Node: `entry/node-config.ts`) and
 * calls `appConfigFrom` on the parsed values. Runtime-neutral: no file or network access here.
 */
import { BATCH_WINDOW_MS, crossRegionEnvShape, randomSeed, requestDefaultsEnvShape, type ValidationDefaults } from '@bamba/shared';
import { z } from 'zod';

const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);

export const appEnvShape = {
  BAMBA_API_KEYS: z.string().optional(),
  BAMBA_MAX_FILE_BYTES: positiveInt.default(200 * 1024 * 1024),
  BAMBA_BATCH_WINDOW_SECONDS: positiveInt.default(BATCH_WINDOW_MS / 1000),
  BAMBA_QUEUE_MAX_WAITING: nonNegativeInt.default(256),
  // Off by default: measured a win on CPU nodes only (BENCHMARKS.md, shared-prefill); on a GPU, a
  // 9B state through Redis may cost more than the prefill it saves (not measured yet).
  BAMBA_SHARED_PREFILL_CHARS: nonNegativeInt.default(0),
  BAMBA_REQUEST_DEADLINE_MS: positiveInt.default(120_000),
  ...requestDefaultsEnvShape,
  BAMBA_SLOW_CLIENT_MS: positiveInt.default(30_000),
  BAMBA_SSE_KEEPALIVE_MS: nonNegativeInt.default(15_000),
  BAMBA_METRICS_TOKEN: z.string().min(1).optional(),
  BAMBA_MAX_SESSIONS_PER_TENANT: positiveInt.default(10_000),
  BAMBA_MAX_SESSION_BYTES_PER_TENANT: positiveInt.default(4 * 1024 ** 3),
  BAMBA_EDGE_SECRET: crossRegionEnvShape.BAMBA_EDGE_SECRET,
};

export interface AppConfig {
  /** API key → tenant. Empty: no authentication (loopback only), tenant `local`. */
  apiKeys: Map<string, string>;
  maxBodyBytes: number;
  /** Largest upload to /v1/files (413 above). */
  maxFileBytes: number;
  /** How long a batch may run before it expires (its `completion_window` is `24h` on the wire). */
  batchWindowMs: number;
  /** Waiting jobs at which new requests get 429. */
  queueMaxWaiting: number;
  /** A chat request for n > 1 answers whose messages hold at least this many characters evaluates them once for all its choices (0: never). */
  sharedPrefillChars: number;
  /** How long a request may take, queue wait included. */
  requestDeadlineMs: number;
  /** max_tokens when the request sets none (capped by the model's context). */
  defaultMaxTokens: number;
  /** Most messages one chat request may carry. */
  maxMessages: number;
  /** A streaming client that reads nothing for this long is cut and its job cancelled. */
  slowClientMs: number;
  /** A stream silent this long gets an SSE comment line, so proxies do not cut it (0: never). */
  sseKeepAliveMs: number;
  /** When set, GET /metrics wants `Authorization: Bearer <token>`. */
  metricsToken: string | null;
  /** Live sessions one tenant may hold (creating or forking more: 429 `quota_exceeded`). */
  maxSessionsPerTenant: number;
  /** Bytes of saved session state one tenant may hold (turns beyond it: 429 `quota_exceeded`). */
  maxSessionBytesPerTenant: number;
  /**
   * Secret shared by the edge and the regions: requests signed with it act for the tenant they
   * name, and regions call each other's internal routes with it. Null: no edge, no peers.
   */
  edgeSecret: string | null;
}

/** Tenant names appear in Redis keys and logs: letters, digits, _ . - only. */
const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Parse `key:tenant` pairs separated by commas or newlines; `#` starts a comment line. */
export function parseApiKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const raw of text.split(/[,\n]/)) {
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('#')) continue;
    const separator = entry.lastIndexOf(':');
    if (separator <= 0 || separator === entry.length - 1) throw new Error('BAMBA_API_KEYS entries must look like key:tenant');
    const tenant = entry.slice(separator + 1);
    if (!TENANT_PATTERN.test(tenant)) throw new Error(`BAMBA_API_KEYS: tenant names may hold letters, digits, _ . - only (got '${tenant.slice(0, 20)}')`);
    keys.set(entry.slice(0, separator), tenant);
  }
  return keys;
}

type AppEnv = z.infer<z.ZodObject<typeof appEnvShape>>;

/** `apiKeysFileText`: more `key:tenant` lines (the Node entry reads BAMBA_API_KEYS_FILE). */
export function appConfigFrom(values: AppEnv, apiKeysFileText = ''): AppConfig {
  return {
    apiKeys: parseApiKeys([values.BAMBA_API_KEYS ?? '', apiKeysFileText].join('\n')),
    maxBodyBytes: values.BAMBA_MAX_BODY_BYTES,
    maxFileBytes: values.BAMBA_MAX_FILE_BYTES,
    batchWindowMs: values.BAMBA_BATCH_WINDOW_SECONDS * 1000,
    queueMaxWaiting: values.BAMBA_QUEUE_MAX_WAITING,
    sharedPrefillChars: values.BAMBA_SHARED_PREFILL_CHARS,
    requestDeadlineMs: values.BAMBA_REQUEST_DEADLINE_MS,
    defaultMaxTokens: values.BAMBA_DEFAULT_MAX_TOKENS,
    maxMessages: values.BAMBA_MAX_MESSAGES,
    slowClientMs: values.BAMBA_SLOW_CLIENT_MS,
    sseKeepAliveMs: values.BAMBA_SSE_KEEPALIVE_MS,
    metricsToken: values.BAMBA_METRICS_TOKEN ?? null,
    maxSessionsPerTenant: values.BAMBA_MAX_SESSIONS_PER_TENANT,
    maxSessionBytesPerTenant: values.BAMBA_MAX_SESSION_BYTES_PER_TENANT,
    edgeSecret: values.BAMBA_EDGE_SECRET ?? null,
  };
}

/** The defaults every request is validated with, from the app's settings. */
export function validationDefaults(config: AppConfig): ValidationDefaults {
  return { maxTokens: config.defaultMaxTokens, maxMessages: config.maxMessages, randomSeed };
}
