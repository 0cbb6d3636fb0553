/**
 * `bamba gpu-node`: a worker node running the engine. Without BAMBA_MODEL_PATH it serves the
 * generated tiny model as `bamba-tiny` (made on first use).
 */
import { resolve } from 'node:path';
import { DEFAULT_MODEL_SEED, ensureCachedModel, parseGpuNodeConfig, startGpuNode } from '@bamba/gpu-node';
import { applyFlags } from '../flags.js';
import { stopOnSignals } from './process-lifetime.js';

const OPTIONS = new Set([
  'REDIS_URL', 'BAMBA_REDIS_PREFIX', 'BAMBA_REGION', 'BAMBA_NODE_ID', 'BAMBA_MODEL_PATH', 'BAMBA_MODEL_ID', 'BAMBA_DEVICE', 'BAMBA_SLOTS',
  'BAMBA_CONTEXT_SIZE', 'BAMBA_FLASH_ATTENTION', 'BAMBA_THREADS', 'BAMBA_LOCK_DURATION_MS', 'BAMBA_STALLED_INTERVAL_MS', 'BAMBA_HEARTBEAT_MS', 'BAMBA_CACHE_DIR',
]);

export const TINY_MODEL_ID = 'bamba-tiny';

export async function runGpuNodeCommand(args: string[]): Promise<number> {
  const env = applyFlags(args, process.env, OPTIONS);
  if (!env.BAMBA_MODEL_PATH) {
    env.BAMBA_MODEL_PATH = ensureCachedModel(resolve(env.BAMBA_CACHE_DIR ?? '.cache'), 'tiny', DEFAULT_MODEL_SEED);
    env.BAMBA_MODEL_ID ??= TINY_MODEL_ID;
  }
  const node = await startGpuNode(parseGpuNodeConfig(env));
  return stopOnSignals(() => node.stop(), 'gpu-node');
}
