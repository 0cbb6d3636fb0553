/**
 * The deployment examples under infra/ set only variables that the processes read, so a typo
 * there (which a process would silently ignore) fails here. The region example is parsed for
 * `NAME: value` and `NAME=value` settings; the edge's wrangler vars against the edge's bindings.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { COMMAND_OPTIONS } from '@bamba/cli/options';
import { EDGE_ENV_VARIABLES } from '@bamba/gateway';
import { parseRegionMap } from '@bamba/shared';
import { describe, expect, it } from 'vitest';

const regionVariables = new Set(['gateway', 'gpu-node', 'workers'].flatMap((command) => [...COMMAND_OPTIONS[command]!]));
const settingsIn = (text: string) => [...text.matchAll(/^\s*((?:BAMBA|REDIS)_[A-Z0-9_]+|PORT)\s*[:=]/gm)].map((match) => match[1]!);

describe('infra examples', () => {
  it('the region compose file and its env example set variables the region processes read', () => {
    const settings = [...settingsIn(readFileSync(resolve('infra/region/compose.yaml'), 'utf8')), ...settingsIn(readFileSync(resolve('infra/region/region.env.example'), 'utf8'))];
    expect(settings).toEqual(expect.arrayContaining(['REDIS_URL', 'BAMBA_REGION', 'BAMBA_EDGE_SECRET', 'BAMBA_REGIONS', 'BAMBA_REPLICATE_SESSIONS']));
    for (const variable of settings) expect(regionVariables.has(variable), variable).toBe(true);
    const map = /^BAMBA_REGIONS=(.*)$/m.exec(readFileSync(resolve('infra/region/region.env.example'), 'utf8'))![1]!;
    expect(parseRegionMap(map).regions.map((region) => region.name)).toEqual(['us', 'eu']);
  });

  it('the edge wrangler config sets only bindings the edge reads, with a valid region map', () => {
    const toml = readFileSync(resolve('infra/edge/wrangler.toml'), 'utf8');
    const vars = toml.slice(toml.indexOf('[vars]'));
    const names = [...vars.matchAll(/^([A-Z][A-Z0-9_]*)\s*=/gm)].map((match) => match[1]!);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(EDGE_ENV_VARIABLES, name).toContain(name);
    expect(toml).toMatch(/compatibility_flags = \["enable_request_signal"\]/);
    const regions = /^BAMBA_REGIONS = '(.*)'$/m.exec(toml)![1]!;
    expect(parseRegionMap(regions).regions.map((region) => region.name)).toEqual(['us', 'eu']);
  });
});
