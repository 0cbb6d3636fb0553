/**
 * The workers process's configuration, read once from the environment: where the region is,
 * where files live, the request defaults (the gateway's, so a batch request runs as it would
 * interactively), and how much batch work runs at once.
 */
import { filesEnvShape, jobEnvShape, logLevelEnvShape, parseEnvironment, regionConfigFrom, regionEnvShape, type RegionConfig } from '@bamba/region';
import { crossRegionEnvShape, parseRegionMap, requestDefaultsEnvShape, type RegionMap } from '@bamba/shared';
import { z } from 'zod';

const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  ...regionEnvShape,
  ...filesEnvShape,
  ...jobEnvShape,
  ...requestDefaultsEnvShape,
  ...crossRegionEnvShape,
  BAMBA_REGION_WORK_CONCURRENCY: positiveInt.max(64).default(4),
  BAMBA_BATCH_CONCURRENCY: positiveInt.default(4),
  BAMBA_BATCH_MAX_IN_FLIGHT: z.coerce.number().int().min(0).default(0),
  BAMBA_BATCH_SHARED_PREFIXES: z.enum(['true', 'false', '1', '0']).transform((text) => text === 'true' || text === '1').default(true),
  BAMBA_BATCH_LOCK_DURATION_MS: positiveInt.default(30_000),
  BAMBA_BATCH_STALLED_INTERVAL_MS: positiveInt.default(15_000),
  ...logLevelEnvShape,
});

/** Every environment variable `bamba workers` reads (each is also a flag). */
export const WORKERS_ENV_VARIABLES: readonly string[] = Object.keys(schema.shape);

export interface WorkersConfig {
  region: RegionConfig;
  filesDir: string;
  /** Runs a batch request's generation job gets. */
  jobAttempts: number;
  defaultMaxTokens: number;
  maxMessages: number;
  /** A batch line (one request) holds at most this many bytes, as an interactive body. */
  maxLineBytes: number;
  /** Batches this process runs at once. */
  batchConcurrency: number;
  /**
   * Batch requests queued or running at once, over all batches of this process; 0: the live
   * gpu-nodes' slots less one per node (at least one), so an interactive request finds a free
   * slot, or waits for at most one batch request per slot.
   */
  batchMaxInFlight: number;
  /** Evaluate a prefix the requests share once, then resume each request from it. */
  batchSharedPrefixes: boolean;
  batchLockDurationMs: number;
  batchStalledIntervalMs: number;
  logLevel: string;
  /** Replication and moves, when this region has peers (BAMBA_REGIONS and BAMBA_EDGE_SECRET). */
  crossRegion: { map: RegionMap; secret: string; concurrency: number } | null;
}

export function parseWorkersConfig(env: Record<string, string | undefined>): WorkersConfig {
  const values = parseEnvironment(schema, env);
  if ((values.BAMBA_REGIONS === undefined) !== (values.BAMBA_EDGE_SECRET === undefined)) throw new Error('BAMBA_REGIONS and BAMBA_EDGE_SECRET go together: set both (regions that replicate and move sessions) or neither');
  const map = values.BAMBA_REGIONS === undefined ? null : parseRegionMap(values.BAMBA_REGIONS);
  if (map && !map.get(values.BAMBA_REGION)) throw new Error(`BAMBA_REGIONS: this region ('${values.BAMBA_REGION}', BAMBA_REGION) is not in the map`);
  return {
    region: regionConfigFrom(values),
    filesDir: values.BAMBA_FILES_DIR,
    jobAttempts: values.BAMBA_JOB_ATTEMPTS,
    defaultMaxTokens: values.BAMBA_DEFAULT_MAX_TOKENS,
    maxMessages: values.BAMBA_MAX_MESSAGES,
    maxLineBytes: values.BAMBA_MAX_BODY_BYTES,
    batchConcurrency: values.BAMBA_BATCH_CONCURRENCY,
    batchMaxInFlight: values.BAMBA_BATCH_MAX_IN_FLIGHT,
    batchSharedPrefixes: values.BAMBA_BATCH_SHARED_PREFIXES,
    batchLockDurationMs: values.BAMBA_BATCH_LOCK_DURATION_MS,
    batchStalledIntervalMs: values.BAMBA_BATCH_STALLED_INTERVAL_MS,
    logLevel: values.BAMBA_LOG_LEVEL,
    crossRegion: map && values.BAMBA_EDGE_SECRET ? { map, secret: values.BAMBA_EDGE_SECRET, concurrency: values.BAMBA_REGION_WORK_CONCURRENCY } : null,
  };
}
