// The edge app inside workerd (@cloudflare/vitest-pool-workers), built from infra/edge's
// wrangler config with test bindings: regions that cannot be reached, so these tests cover what
// the edge decides alone. tests/multi-region.test.ts runs it under `wrangler dev` before real regions.
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

export const EDGE_TEST_SECRET = 'workerd-test-secret-0123456789abcdef';

export default defineConfig({
  plugins: [cloudflareTest({
    main: '../src/entry/worker.ts',
    wrangler: { configPath: '../../infra/edge/wrangler.toml' },
    miniflare: {
      bindings: {
        BAMBA_API_KEYS: 'edge-test-key:tenant-a',
        BAMBA_EDGE_SECRET: EDGE_TEST_SECRET,
        // Port 9 on loopback refuses connections: both regions are down.
        BAMBA_REGIONS: JSON.stringify([{ name: 'us', url: 'http://127.0.0.1:9', continent: 'NA' }, { name: 'eu', url: 'http://127.0.0.2:9', continent: 'EU' }]),
        BAMBA_EDGE_BREAKER_OPEN_MS: '60000',
      },
      // More API keys in KV (key `api-keys`); edge-kv-keys.test.ts writes them.
      kvNamespaces: ['BAMBA_API_KEYS_KV'],
    },
  })],
  // The first test pays for loading the Worker into workerd (4.5 s seen on a loaded 2-core
  // machine, against vitest's default limit of 5 s): a generous limit, no time is asserted.
  test: { name: 'edge-workerd', include: ['*.test.ts'], testTimeout: 60_000 },
});
