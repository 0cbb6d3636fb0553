/**
 * The edge's deploy artefact builds offline: `wrangler deploy --dry-run --outdir` bundles
 * gateway/src/entry/worker.ts with infra/edge/wrangler.toml as Cloudflare would receive it.
 * The bundle must not need Node (no `node:` modules: the Worker runs without nodejs_compat).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EDGE_WRANGLER_CONFIG, WRANGLER_OFFLINE_ENV, wranglerBin } from '@bamba/cli/edge-dev';
import { afterAll, describe, expect, it } from 'vitest';

const outDir = mkdtempSync(join(tmpdir(), 'bamba-edge-bundle-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('the edge bundle', () => {
  it('builds offline with wrangler deploy --dry-run, and needs no Node module', () => {
    const run = spawnSync(process.execPath, [wranglerBin(), 'deploy', '-c', EDGE_WRANGLER_CONFIG, '--dry-run', '--outdir', outDir], { env: { ...process.env, ...WRANGLER_OFFLINE_ENV }, encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr + run.stdout).toBe(0);
    const upload = /Total Upload: ([^\n]+)/.exec(run.stdout)?.[1];
    expect(upload).toBeDefined();
    const bundle = join(outDir, 'worker.js');
    const text = readFileSync(bundle, 'utf8');
    expect(text).not.toMatch(/from\s*["']node:|require\(["']node:/);
    expect(text).toContain('x-bamba-edge-signature'); // our code, not only its dependencies
    process.stdout.write(`edge bundle: ${statSync(bundle).size} bytes (wrangler: ${upload})\n`);
  });
});
