/**
 * The edge's configuration, read from the Worker's bindings (vars and secrets, all strings):
 * the app's settings (`appEnvShape`: API keys, limits, request defaults), the region map and the
 * secret it shares with the regions (both required), and the breaker's timings.
 */
import { crossRegionEnvShape, parseRegionMap } from '@bamba/shared';
import { z } from 'zod';
import { appConfigFrom, appEnvShape } from '../config.js';
import type { EdgeConfig } from './edge-app.js';
import { DEFAULT_HEALTH_OPTIONS, type HealthOptions } from './region-health.js';

const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  ...appEnvShape,
  BAMBA_EDGE_SECRET: crossRegionEnvShape.BAMBA_EDGE_SECRET.unwrap(),
  BAMBA_REGIONS: crossRegionEnvShape.BAMBA_REGIONS.unwrap(),
  BAMBA_EDGE_BREAKER_OPEN_MS: positiveInt.default(DEFAULT_HEALTH_OPTIONS.openMs),
  BAMBA_EDGE_READY_CACHE_MS: positiveInt.default(DEFAULT_HEALTH_OPTIONS.readyCacheMs),
});

/** Every binding the edge reads (vars and secrets), for the README and wrangler config. */
export const EDGE_ENV_VARIABLES: readonly string[] = [...Object.keys(schema.shape), 'BAMBA_API_KEYS_KV'];

export interface EdgeSettings {
  config: EdgeConfig;
  health: HealthOptions;
}

/** Parse the Worker's bindings (only string values count); `apiKeysText` adds keys from a KV binding. Throws naming the variable. */
export function parseEdgeConfig(bindings: Record<string, unknown>, apiKeysText = ''): EdgeSettings {
  const strings = Object.fromEntries(Object.entries(bindings).filter(([, value]) => typeof value === 'string'));
  const result = schema.safeParse(strings);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${issue.path.join('.')}: ${issue.message}`);
  }
  const values = result.data;
  const app = appConfigFrom(values, apiKeysText);
  if (app.apiKeys.size === 0) throw new Error('BAMBA_API_KEYS: the edge is public, so it needs API keys (a secret, or the KV binding BAMBA_API_KEYS_KV)');
  return {
    config: { ...app, edgeSecret: values.BAMBA_EDGE_SECRET, regions: parseRegionMap(values.BAMBA_REGIONS) },
    health: { ...DEFAULT_HEALTH_OPTIONS, openMs: values.BAMBA_EDGE_BREAKER_OPEN_MS, readyCacheMs: values.BAMBA_EDGE_READY_CACHE_MS },
  };
}
