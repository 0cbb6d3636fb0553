#!/usr/bin/env node
// Imports point down (STYLE.md "Boundaries"): shared imports zod only; gateway, gpu-node and
// workers import shared, never each other; the scheduler never sees the transport.
// Fails with one line per violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rules = [
  { folder: 'shared/src', allowed: (spec) => spec.startsWith('.') || spec === 'zod' || spec.startsWith('zod/') || spec === 'vitest' },
  { folder: 'gateway/src', forbidden: ['@bamba/gpu-node', '@bamba/workers', 'node-llama-cpp'] },
  { folder: 'workers/src', forbidden: ['@bamba/gpu-node', '@bamba/gateway', 'node-llama-cpp'] },
  { folder: 'gpu-node/src', forbidden: ['@bamba/gateway', '@bamba/workers'] },
  { folder: 'gpu-node/src/scheduler', forbidden: ['bullmq', 'ioredis', 'hono', 'node-llama-cpp'] },
];

function files(folder) {
  const absolute = join(root, folder);
  try { statSync(absolute); } catch { return []; }
  return readdirSync(absolute, { recursive: true })
    .map((entry) => join(absolute, String(entry)))
    .filter((path) => path.endsWith('.ts'));
}

const importPattern = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const violations = [];
for (const rule of rules) {
  for (const path of files(rule.folder)) {
    for (const match of readFileSync(path, 'utf8').matchAll(importPattern)) {
      const spec = match[1] ?? match[2];
      if (spec.startsWith('node:') && rule.folder === 'shared/src') { violations.push(`${relative(root, path)}: shared must run in workerd, imports ${spec}`); continue; }
      const bad = rule.allowed ? !rule.allowed(spec) : rule.forbidden.some((name) => spec === name || spec.startsWith(`${name}/`));
      if (bad) violations.push(`${relative(root, path)}: imports ${spec}, which ${rule.folder} may not`);
    }
  }
}
if (violations.length > 0) {
  process.stderr.write(`${violations.join('\n')}\n`);
  process.exit(1);
}
