// One vitest run: every package's unit tests and the end-to-end suites in tests/ (Node), and
// the edge Worker inside workerd (gateway/edge-test, its own project and config).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['{shared,model-gen,region,gpu-node,gateway,workers,cli,bench}/src/**/*.test.ts', 'tests/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          // node-llama-cpp is a native addon: separate processes, not worker threads.
          pool: 'forks',
          // Two cores: engine suites running side by side would only slow each other down.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      './gateway/edge-test/vitest.config.ts',
    ],
  },
});
