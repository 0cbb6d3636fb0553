/**
 * Where a region's Redis is and how its keys are named: the part of every process's
 * configuration that must agree across gateway, gpu-nodes and workers. Each process merges
 * `regionEnvShape` into its own schema (one definition of these variables) and calls
 * `regionConfigFrom` on the parsed values.
 */
import { z } from 'zod';

/** Names used inside Redis keys: no ':', braces (Cluster hash tags) or spaces. */
export const keyNamePattern = /^[A-Za-z0-9_.-]+$/;

export const regionEnvShape = {
  /** The region's Redis (`redis://host:port`), unless REDIS_CLUSTER_NODES is set. */
  REDIS_URL: z.string().url({ error: 'REDIS_URL must be a redis:// URL' }).optional(),
  /** A Redis Cluster instead: `host:port` of one or more nodes, comma-separated. */
  REDIS_CLUSTER_NODES: z.string().min(1).optional(),
  BAMBA_REDIS_PREFIX: z.string().regex(keyNamePattern, 'BAMBA_REDIS_PREFIX may hold letters, digits, _ . - only').default('bamba'),
  BAMBA_REGION: z.string().regex(keyNamePattern, 'BAMBA_REGION may hold letters, digits, _ . - only').default('local'),
};

/** How much a process of the region logs (the gateway, the gpu-nodes, the workers). */
export const logLevelEnvShape = {
  BAMBA_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** How generation jobs are queued: shared by every producer (the gateway and the workers). */
export const jobEnvShape = {
  /** Runs a generation job gets (a dead or stopping node costs one). */
  BAMBA_JOB_ATTEMPTS: z.coerce.number().int().positive().max(10).default(3),
};

/**
 * Whether the region's sessions are replicated to another region: the gpu-nodes queue each
 * committed turn, the gateway each deletion (the workers, with BAMBA_REGIONS, send them).
 */
export const replicationEnvShape = {
  BAMBA_REPLICATE_SESSIONS: z.enum(['true', 'false', '1', '0']).transform((text) => text === 'true' || text === '1').default(false),
};

/** How long a stopping process lets running generations finish: the gpu-node and the gateway alike. */
export const drainEnvShape = {
  BAMBA_DRAIN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
};

/** Where uploaded files and batch results live: shared by the gateway and the workers. */
export const filesEnvShape = {
  /** Directory of file contents (one file per id, written atomically); default `.data/files`. */
  BAMBA_FILES_DIR: z.string().min(1).default('.data/files'),
};

export type RedisTarget = { kind: 'single'; url: string } | { kind: 'cluster'; nodes: Array<{ host: string; port: number }> };

export interface RegionConfig {
  redis: RedisTarget;
  /** Prefix of every key (isolates deployments and tests sharing one Redis). */
  prefix: string;
  /** Region name (isolates regions sharing one Redis). */
  region: string;
}

type RegionEnv = { REDIS_URL?: string | undefined; REDIS_CLUSTER_NODES?: string | undefined; BAMBA_REDIS_PREFIX: string; BAMBA_REGION: string };

/**
 * Parse an environment record with a process's schema; the error names the variable
 * (`BAMBA_SLOTS: Too small: expected number to be >0`).
 */
export function parseEnvironment<T>(schema: z.ZodType<T>, env: Record<string, string | undefined>): T {
  const result = schema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${issue.path.join('.')}: ${issue.message}`);
  }
  return result.data;
}

/** Throws an Error naming the variable when the Redis settings are missing or contradict. */
export function regionConfigFrom(values: RegionEnv): RegionConfig {
  if (values.REDIS_URL && values.REDIS_CLUSTER_NODES) throw new Error('set REDIS_URL or REDIS_CLUSTER_NODES, not both');
  if (!values.REDIS_URL && !values.REDIS_CLUSTER_NODES) throw new Error('REDIS_URL: required (or REDIS_CLUSTER_NODES for a Redis Cluster)');
  const redis: RedisTarget = values.REDIS_URL ? { kind: 'single', url: values.REDIS_URL } : { kind: 'cluster', nodes: parseClusterNodes(values.REDIS_CLUSTER_NODES!) };
  return { redis, prefix: values.BAMBA_REDIS_PREFIX, region: values.BAMBA_REGION };
}

function parseClusterNodes(text: string): Array<{ host: string; port: number }> {
  return text.split(',').map((entry) => {
    const match = /^\s*([^\s:]+):(\d{1,5})\s*$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) throw new Error(`REDIS_CLUSTER_NODES: '${entry.trim()}' is not host:port`);
    return { host: match[1]!, port };
  });
}
