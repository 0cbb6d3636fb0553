/**
 * Node entry: the gateway in a region, serving HTTP with @hono/node-server and dispatching
 * through the region's Redis. Wiring only.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { redisKeys } from '@bamba/shared';
import { serve } from '@hono/node-server';
import { createApp } from '../app.js';
import { parseGatewayConfig, type GatewayConfig } from '../config.js';
import { RedisDispatcher } from '../dispatch/redis-dispatcher.js';
import { RedisSessions } from '../dispatch/redis-sessions.js';

export interface RunningGateway {
  url: string;
  config: GatewayConfig;
  close(): Promise<void>;
}

/** Read the gateway's config from an environment record, including BAMBA_API_KEYS_FILE. */
export function gatewayConfigFromEnv(env: Record<string, string | undefined>): GatewayConfig {
  const file = env.BAMBA_API_KEYS_FILE;
  return parseGatewayConfig(env, file ? readFileSync(file, 'utf8') : undefined);
}

export async function startGateway(config: GatewayConfig, log: (message: string) => void = (message) => process.stderr.write(`${message}\n`)): Promise<RunningGateway> {
  const keys = redisKeys(config.redisPrefix, config.region);
  const dispatcher = new RedisDispatcher(config.redisUrl, keys);
  const sessions = new RedisSessions(dispatcher.connection, keys, config.sessionTtlSeconds);
  const app = createApp({ dispatcher, sessions, config, logError: (error) => log(`gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`) });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(started));
    started.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  if (config.apiKeys.size === 0) log(`gateway: no API keys configured (BAMBA_API_KEYS), so listening on ${config.host} only`);
  log(`gateway: listening on ${url}`);
  return {
    url,
    config,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dispatcher.close();
    },
  };
}
