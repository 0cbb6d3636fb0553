/**
 * The gpu-node's configuration, read once from the environment (CLI flags are mapped onto the
 * same names by the CLI). Nothing else in the gpu-node reads `process.env`.
 */
import { freemem, hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { drainEnvShape, keyNamePattern, logLevelEnvShape, parseEnvironment, regionConfigFrom, regionEnvShape, type RegionConfig, replicationEnvShape } from '@bamba/region';
import { z } from 'zod';

const booleanText = z.enum(['true', 'false', '1', '0']).transform((text) => text === 'true' || text === '1');
const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  ...regionEnvShape,
  BAMBA_NODE_ID: z.string().regex(keyNamePattern, 'BAMBA_NODE_ID may hold letters, digits, _ . - only').optional(),
  BAMBA_MODEL_PATH: z.string().min(1, 'BAMBA_MODEL_PATH must name a GGUF file'),
  BAMBA_MODEL_ID: z.string().min(1).optional(),
  BAMBA_DEVICE: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  BAMBA_SLOTS: positiveInt.max(256).default(4),
  BAMBA_CONTEXT_SIZE: positiveInt.optional(),
  BAMBA_FLASH_ATTENTION: booleanText.default(false),
  BAMBA_ISOLATE_PROMPTS: booleanText.default(true),
  BAMBA_STATE_DIR: z.string().min(1).optional(),
  BAMBA_THREADS: positiveInt.optional(),
  // A dead node's jobs wait for its lock to lapse and then for a stalled check: 10 s + 5 s
  // (30 s + 15 s before left a non-streaming client waiting ~38 s). Locks are renewed every
  // third of their duration, so only an event loop stalled for 10 s loses a live node's job.
  BAMBA_LOCK_DURATION_MS: positiveInt.default(10_000),
  BAMBA_STALLED_INTERVAL_MS: positiveInt.default(5_000),
  BAMBA_HEARTBEAT_MS: positiveInt.default(1_000),
  BAMBA_SNAPSHOT_BUDGET_BYTES: positiveInt.default(2 * 1024 ** 3),
  BAMBA_RESIDENT_SESSIONS: z.coerce.number().int().min(0).optional(),
  BAMBA_HOST_TIER_BYTES: z.coerce.number().int().min(0).optional(),
  BAMBA_SYSTEM_CHECKPOINT_TOKENS: z.coerce.number().int().min(0).default(256),
  BAMBA_PREFIX_CACHE: booleanText.default(true),
  BAMBA_SNAPSHOT_ENCODING: z.enum(['f32', 'bf16']).default('f32'),
  ...replicationEnvShape,
  BAMBA_EVENT_FLUSH_MS: z.coerce.number().int().min(0).max(1000).default(10),
  ...drainEnvShape,
  ...logLevelEnvShape,
  BAMBA_FAULT_INJECTION: z.enum(['none', 'die-after-commit', 'die-after-end']).default('none'),
});

/** Every environment variable `bamba gpu-node` reads (each is also a flag). */
export const GPU_NODE_ENV_VARIABLES: readonly string[] = Object.keys(schema.shape);

/** gpu-node settings; see the README's configuration table for each variable. */
export interface GpuNodeConfig {
  region: RegionConfig;
  nodeId: string;
  modelPath: string;
  /** The `model` clients ask for. Default: the file name without `.gguf`. */
  modelId: string;
  device: 'auto' | 'cpu' | 'cuda';
  slots: number;
  contextSize: number | undefined;
  flashAttention: boolean;
  /** Evaluate prompts alone so answers do not depend on load (throughput cost with bursts). */
  isolatePrompts: boolean;
  /** Folder for llama.cpp's state files (export/import); default /dev/shm. */
  stateDir: string | undefined;
  threads: number | undefined;
  /** A job's lock lasts this long unless renewed; a dead node's job is retried after it. */
  lockDurationMs: number;
  /** How often this node looks for other nodes' stalled (orphaned) jobs. */
  stalledIntervalMs: number;
  heartbeatMs: number;
  /** Snapshot bytes kept in Redis before least-recently-used cache snapshots are evicted. */
  snapshotBudgetBytes: number;
  /** Sessions kept resident in idle slots after their turn (default: all slots; 0 = none). */
  residentSessions: number;
  /** Snapshot stateless chat requests too, so re-sent histories resume (exact-prefix cache). */
  prefixCache: boolean;
  /** How snapshots are stored: `f32` as llama.cpp wrote them, `bf16` recurrent state (about half the bytes). Both are read. */
  snapshotEncoding: 'f32' | 'bf16';
  /** Queue each committed session turn for replication to another region (the workers send it). */
  replicateSessions: boolean;
  /** A request's later token deltas are written to Redis at most this often (ms). */
  eventFlushMs: number;
  /** On stop, running generations may finish within this long; the rest go back to the queue. */
  drainTimeoutMs: number;
  logLevel: string;
  /**
   * Reliability testing only: `die-after-commit` SIGKILLs the node between a turn's commit and its
   * end event, `die-after-end` between its end event and its snapshot landing.
   */
  faultInjection: 'none' | 'die-after-commit' | 'die-after-end';
  /** Bytes of session states kept in host memory after their turn (the second tier; 0: none). */
  hostTierBytes: number;
  /** A system prompt of at least this many tokens gets its state saved for later conversations (0: never). */
  systemCheckpointTokens: number;
}

export function parseGpuNodeConfig(env: Record<string, string | undefined>): GpuNodeConfig {
  const values = parseEnvironment(schema, env);
  return {
    region: regionConfigFrom(values),
    nodeId: values.BAMBA_NODE_ID ?? `${hostname().replace(/[^A-Za-z0-9_.-]/g, '-')}-${process.pid}-${randomBytes(2).toString('hex')}`,
    modelPath: values.BAMBA_MODEL_PATH,
    modelId: values.BAMBA_MODEL_ID ?? basename(values.BAMBA_MODEL_PATH).replace(/\.gguf$/i, ''),
    device: values.BAMBA_DEVICE,
    slots: values.BAMBA_SLOTS,
    contextSize: values.BAMBA_CONTEXT_SIZE,
    flashAttention: values.BAMBA_FLASH_ATTENTION,
    isolatePrompts: values.BAMBA_ISOLATE_PROMPTS,
    stateDir: values.BAMBA_STATE_DIR,
    threads: values.BAMBA_THREADS,
    lockDurationMs: values.BAMBA_LOCK_DURATION_MS,
    stalledIntervalMs: values.BAMBA_STALLED_INTERVAL_MS,
    heartbeatMs: values.BAMBA_HEARTBEAT_MS,
    snapshotBudgetBytes: values.BAMBA_SNAPSHOT_BUDGET_BYTES,
    residentSessions: values.BAMBA_RESIDENT_SESSIONS ?? values.BAMBA_SLOTS,
    prefixCache: values.BAMBA_PREFIX_CACHE,
    snapshotEncoding: values.BAMBA_SNAPSHOT_ENCODING,
    replicateSessions: values.BAMBA_REPLICATE_SESSIONS,
    eventFlushMs: values.BAMBA_EVENT_FLUSH_MS,
    drainTimeoutMs: values.BAMBA_DRAIN_TIMEOUT_MS,
    logLevel: values.BAMBA_LOG_LEVEL,
    faultInjection: values.BAMBA_FAULT_INJECTION,
    // Default: a quarter of the memory free at start (a host tier fills only as sessions come).
    hostTierBytes: values.BAMBA_HOST_TIER_BYTES ?? Math.floor(freemem() / 4),
    systemCheckpointTokens: values.BAMBA_SYSTEM_CHECKPOINT_TOKENS,
  };
}
