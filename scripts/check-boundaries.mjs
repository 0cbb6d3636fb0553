#!/usr/bin/env node
// Imports point down (STYLE.md "Boundaries"): shared imports zod only and runs in workerd;
// only region/ speaks to Redis (ioredis, and node-redis for snapshot bytes), and BullMQ lives in region/ and the gpu-node's intake;
// gateway, gpu-node and workers import shared and region, never each other; the gateway reaches
// region only from its Node entry and dispatch adapter; the scheduler never sees the transport;
// model-gen is tooling the serving processes never load. Fails with one line per violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const isTest = (path) => /\.test\.ts$/.test(path);
const under = (path, folder) => path.startsWith(`${folder}/`);
/** Redis clients: ioredis (everything), node-redis (region's snapshot chunk bytes only). */
const REDIS_CLIENTS = ['ioredis', 'redis', '@redis/client'];

/** Each rule: which files it covers, and a verdict on one import (a string saying why not, or null). */
const rules = [
  { folder: 'shared/src', check: (spec) => (spec.startsWith('.') || spec === 'zod' || spec.startsWith('zod/') || spec === 'vitest' ? null : 'shared imports zod only (it must run in workerd)') },
  { folder: 'model-gen/src', check: (spec) => (spec.startsWith('@bamba/') && spec !== '@bamba/shared' ? 'model-gen is tooling below the serving packages' : null) },
  // Its tests (and their support in testing/) start a private redis-server with the CLI's helper.
  {
    folder: 'region/src',
    check: (spec, path) => {
      if (/^@bamba\/(?!shared$)/.test(spec) && !((isTest(path) || under(path, 'region/src/testing')) && spec === '@bamba/cli/local-redis')) return 'region imports shared only';
      // node-redis moves snapshot chunk bytes and nothing else; every other command is ioredis.
      if ((spec === 'redis' || spec === '@redis/client') && path !== 'region/src/bulk-bytes.ts') return 'node-redis is for snapshot bytes only (bulk-bytes.ts)';
      return null;
    },
  },
  {
    folder: 'gateway/src',
    check: (spec, path) => {
      // The edge runs in workerd without nodejs_compat: web APIs, hono, zod and shared only.
      if (/^gateway\/src\/(edge\/|entry\/worker\.ts)/.test(path) && !isTest(path) && (spec.startsWith('node:') || ['@hono/node-server', 'pino', 'prom-client', '@bamba/region'].includes(spec))) return 'the edge runs in workerd: no Node modules';
      if (['@bamba/gpu-node', '@bamba/workers', '@bamba/model-gen', 'node-llama-cpp', ...REDIS_CLIENTS, 'bullmq'].includes(spec)) return 'the gateway talks to a region through @bamba/region only';
      if (spec === '@bamba/region' && !/^gateway\/src\/(entry\/node(-config)?\.ts|dispatch\/)/.test(path)) return 'only entry/node.ts, entry/node-config.ts and dispatch/ may import @bamba/region';
      return null;
    },
  },
  {
    folder: 'gpu-node/src',
    check: (spec, path) => {
      if (['@bamba/gateway', '@bamba/workers', ...REDIS_CLIENTS].includes(spec)) return 'the gpu-node imports shared and region (Redis through region only)';
      if (spec === 'bullmq' && !under(path, 'gpu-node/src/intake')) return 'BullMQ belongs to the intake';
      if ((spec === '@bamba/model-gen' || spec.startsWith('@bamba/cli/')) && !isTest(path)) return 'tooling: tests may use it, the serving code may not';
      if (under(path, 'gpu-node/src/scheduler') && ['bullmq', 'hono', 'node-llama-cpp', '@bamba/region'].includes(spec)) return 'the scheduler is plain TypeScript';
      return null;
    },
  },
  // The pages' browser code: plain DOM and fetch, its own modules only (it is served as is).
  { folder: 'gateway/browser/src', check: (spec) => (spec.startsWith('./') ? null : 'browser code imports its own modules only (nothing is bundled)') },
  { folder: 'workers/src', check: (spec) => (['@bamba/gpu-node', '@bamba/gateway', 'node-llama-cpp', ...REDIS_CLIENTS, 'bullmq'].includes(spec) ? 'workers import shared and region only' : null) },
  { folder: 'cli/src', check: (spec) => ([...REDIS_CLIENTS, 'bullmq'].includes(spec) ? 'Redis and queues go through @bamba/region' : null) },
  { folder: 'tests', check: (spec) => ([...REDIS_CLIENTS, 'bullmq'].includes(spec) ? 'Redis and queues go through @bamba/region' : null) },
  { folder: 'bench/src', check: (spec) => ([...REDIS_CLIENTS, 'bullmq'].includes(spec) ? 'Redis and queues go through @bamba/region' : null) },
];

function files(folder) {
  const absolute = join(root, folder);
  try { statSync(absolute); } catch { return []; }
  return readdirSync(absolute, { recursive: true })
    .map((entry) => join(absolute, String(entry)))
    .filter((path) => path.endsWith('.ts') && !path.includes('/node_modules/') && !path.includes('/dist/'));
}

const importPattern = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const violations = [];
for (const rule of rules) {
  for (const absolute of files(rule.folder)) {
    const path = relative(root, absolute);
    for (const match of readFileSync(absolute, 'utf8').matchAll(importPattern)) {
      const spec = match[1] ?? match[2];
      if (spec.startsWith('node:') && rule.folder === 'shared/src') { violations.push(`${path}: shared must run in workerd, imports ${spec}`); continue; }
      const why = rule.check(spec, path);
      if (why) violations.push(`${path}: imports ${spec}: ${why}`);
    }
  }
}
if (violations.length > 0) {
  process.stderr.write(`${violations.join('\n')}\n`);
  process.exit(1);
}
