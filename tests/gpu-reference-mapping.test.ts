/**
 * The reference check's CPU half (#14 item 3): llama.cpp's dump of the tiny model
 * (bench/src/reference-dump.ts) and bench/gpu/reference/check.py --dry-run, which maps the GGUF
 * onto Hugging Face's BambaForCausalLM names and shapes and compares a float64 numpy forward of
 * the reference math with llama.cpp's numbers. The GPU host runs the same with transformers.
 * Needs python3 with numpy (`npm test` installs it through ensure-deps --need-numpy).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';

const CHECK = resolve('bench/gpu/reference/check.py');
const PERTURB = resolve('bench/gpu/reference/perturb_gguf.py');
const DUMPER = resolve('bench/dist/reference-dump.js');
/** F32 weights and K/V cache: llama.cpp and the float64 reference agree to about 4e-5. */
const F32_AGREEMENT = 1e-3;

interface Comparison {
  reference: string;
  dump: { kvCache: string };
  nextTokenMaxAbsDiff: number;
  allStepsMaxAbsDiff: number;
  greedyEqual: boolean;
  pass: boolean;
  prompts: Array<{ name: string; steps: number; greedyEqual: boolean }>;
}
interface CheckResult {
  pass: boolean;
  mode: string;
  verdict: string;
  findings: Array<{ blocking: boolean; message: string }>;
  mapping: { hfParameters: number; mapped: number; ggufTensors: number; problems: string[]; sources: Record<string, string> };
  comparisons: Comparison[];
  sensitivity: Array<{ mistake: string; applicable: boolean; detected: boolean | null }>;
}
interface Dump {
  vocabSize: number;
  prompts: Array<{ name: string; tokens: number[]; greedyTokens: number[]; stepLogProbs: Array<Array<number | null>> }>;
}

let dir: string;
const tiny = ensureCachedModel(resolve('.cache'), 'tiny', DEFAULT_MODEL_SEED);

function run(command: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function mustRun(command: string, args: string[]): string {
  const { status, output } = run(command, args);
  expect(status, output).toBe(0);
  return output;
}

function check(gguf: string, dumps: string[], name: string): { status: number | null; result: CheckResult; output: string } {
  const out = join(dir, `${name}.json`);
  const { status, output } = run('python3', [CHECK, '--dry-run', '--gguf', gguf, ...dumps.flatMap((dump) => ['--dump', dump]), '--out', out]);
  return { status, result: JSON.parse(readFileSync(out, 'utf8')) as CheckResult, output };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bamba-reference-'));
  mustRun(process.execPath, [DUMPER, '--model', tiny, '--device', 'cpu', '--kv-cache', 'f32', '--out', join(dir, 'tiny-f32.json')]);
  mustRun(process.execPath, [DUMPER, '--model', tiny, '--device', 'cpu', '--kv-cache', 'f16', '--out', join(dir, 'tiny-f16.json')]);
  mustRun('python3', [PERTURB, tiny, join(dir, 'tiny-perturbed.gguf')]);
  mustRun(process.execPath, [DUMPER, '--model', join(dir, 'tiny-perturbed.gguf'), '--device', 'cpu', '--out', join(dir, 'perturbed-f32.json')]);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('reference check (GGUF -> BambaForCausalLM), CPU dry run', () => {
  it('the dump holds 3 prompts with 32 greedy tokens, each the argmax of its full-vocabulary log-softmax', () => {
    const dump = JSON.parse(readFileSync(join(dir, 'tiny-f32.json'), 'utf8')) as Dump;
    expect(dump.prompts.map((prompt) => prompt.name)).toEqual(['plain', 'chat', 'long']);
    for (const prompt of dump.prompts) {
      expect(prompt.tokens.length).toBeGreaterThan(0);
      expect(prompt.greedyTokens).toHaveLength(32);
      prompt.stepLogProbs.forEach((row, step) => {
        expect(row).toHaveLength(dump.vocabSize);
        const values = row.map((value) => value ?? -Infinity);
        expect(values.reduce((sum, value) => sum + Math.exp(value), 0)).toBeCloseTo(1, 4);
        expect(values.indexOf(Math.max(...values))).toBe(prompt.greedyTokens[step]);
      });
    }
  });

  it('maps every GGUF tensor to a BambaForCausalLM parameter of the right shape, and llama.cpp matches the numpy reference', () => {
    const { status, result, output } = check(tiny, [join(dir, 'tiny-f32.json'), join(dir, 'tiny-f16.json')], 'tiny');
    expect(status, output).toBe(0);
    expect(result.pass).toBe(true);
    expect(result.mode).toBe('dry-run');
    expect(result.findings).toEqual([]);
    expect(result.mapping.problems).toEqual([]);
    expect(result.mapping.mapped).toBe(result.mapping.hfParameters);
    expect(new Set(Object.values(result.mapping.sources)).size).toBe(result.mapping.ggufTensors);
    expect(result.mapping.sources['model.layers.2.self_attn.q_proj.weight']).toBe('blk.2.attn_q.weight');
    expect(result.mapping.sources['model.layers.0.mamba.A_log']).toBe('blk.0.ssm_a');
    const [f32, f16] = result.comparisons;
    expect(f32!.dump.kvCache).toBe('F32');
    expect(f32!.allStepsMaxAbsDiff).toBeLessThan(F32_AGREEMENT);
    expect(f32!.greedyEqual).toBe(true);
    expect(f32!.prompts.every((prompt) => prompt.steps === 32)).toBe(true);
    // What the gpu-node serves with: an F16 K/V cache, within the looser half-precision bound.
    expect(f16!.dump.kvCache).toBe('F16');
    expect(f16!.pass).toBe(true);
    // Every applicable deliberate mistake would have been caught.
    expect(result.sensitivity.filter((item) => item.applicable).every((item) => item.detected)).toBe(true);
  });

  it('catches norm and D mapping mistakes on a copy with random norm weights and D', () => {
    const { status, result, output } = check(join(dir, 'tiny-perturbed.gguf'), [join(dir, 'perturbed-f32.json')], 'perturbed');
    expect(status, output).toBe(0);
    expect(result.comparisons[0]!.allStepsMaxAbsDiff).toBeLessThan(F32_AGREEMENT);
    expect(result.sensitivity.every((item) => item.applicable && item.detected)).toBe(true);
  });

  it('refuses a dump made from another model', () => {
    const { status, result } = check(tiny, [join(dir, 'perturbed-f32.json')], 'wrong-dump');
    expect(status).toBe(1);
    expect(result.mapping.problems.join('\n')).toContain('not from');
  });

  it('refuses Granite 4.0 H (MoE, Granite multipliers, no RoPE): BambaForCausalLM cannot represent it', () => {
    const granite = ensureCachedModel(resolve('.cache'), 'granite-4.0-h-shape', DEFAULT_MODEL_SEED);
    const { status, result } = check(granite, [], 'granite');
    expect(status).toBe(2);
    const messages = result.findings.filter((finding) => finding.blocking).map((finding) => finding.message).join('\n');
    expect(messages).toContain('mixture of experts');
    expect(messages).toContain('logit_scale');
    expect(messages).toContain('RoPE');
  });
});
