/**
 * `bamba gpu-node`: a worker node running the engine. Without BAMBA_MODEL_PATH it serves the
 * generated tiny model as `bamba-tiny` (made on first use).
 */
import { resolve } from 'node:path';
import { GPU_NODE_ENV_VARIABLES, parseGpuNodeConfig, startGpuNode } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { applyFlags } from '../flags.js';
import { createLogger } from '../logger.js';
import { stopOnSignals } from './process-lifetime.js';

/** The variables (and so the flags) `bamba gpu-node` accepts. */
export const GPU_NODE_OPTIONS: ReadonlySet<string> = new Set([...GPU_NODE_ENV_VARIABLES, 'BAMBA_CACHE_DIR']);

export const TINY_MODEL_ID = 'bamba-tiny';

export async function runGpuNodeCommand(args: string[]): Promise<number> {
  const env = applyFlags(args, process.env, GPU_NODE_OPTIONS);
  if (!env.BAMBA_MODEL_PATH) {
    env.BAMBA_MODEL_PATH = ensureCachedModel(resolve(env.BAMBA_CACHE_DIR ?? '.cache'), 'tiny', DEFAULT_MODEL_SEED);
    env.BAMBA_MODEL_ID ??= TINY_MODEL_ID;
  }
  const config = parseGpuNodeConfig(env);
  const logger = createLogger('gpu-node', config.logLevel, { nodeId: config.nodeId });
  const node = await startGpuNode(config, (message) => logger.info(message));
  return stopOnSignals(() => node.stop(), 'gpu-node');
}
