/**
 * Does storing recurrent state as bf16 change what the model says? For the tiny and small
 * presets and 24 distinct chat prompts: evaluate a prompt (all but its last token) in a slot,
 * export the state as f32 and as bf16, restore each into another slot, and generate 256 greedy
 * tokens from each, against the 256 tokens the original slot generates uninterrupted. Counts the
 * prompts whose continuations are identical, the earliest divergence, and the largest difference
 * in the probability the engine reports for the chosen token (first token, and any token of the
 * common prefix). Also the bytes per state both ways, measured here and computed for the
 * bamba-9b shape.
 */
import { resolve } from 'node:path';
import { createLlamaEngine, GREEDY, parseSequenceState, sectionTotals, type Engine, type Slot } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, estimateStateBytes, MODEL_PRESETS, type ModelPresetName } from '@bamba/model-gen';
import { SNAPSHOT_HEADER_BYTES } from '@bamba/shared';
import type { BenchCase } from '../case.js';
import { progress, round } from '../measure.js';

const TOPICS = [
  'the tides', 'a recipe for bread', 'why the sky is blue', 'prime numbers', 'the history of Rome', 'how a bicycle stays up',
  'sorting algorithms', 'the water cycle', 'a haiku about snow', 'the rules of chess', 'photosynthesis', 'compound interest',
  'a short story about a lighthouse', 'how vaccines work', 'the difference between TCP and UDP', 'volcanoes', 'jazz improvisation',
  'the French Revolution', 'black holes', 'how to tie a bowline knot', 'the Fibonacci sequence', 'coffee roasting', 'glaciers', 'the printing press',
];

/** 24 distinct prompts of different lengths (some with a few turns of history). */
function prompts(count: number): Array<Array<{ role: 'user' | 'assistant'; content: string }>> {
  return TOPICS.slice(0, count).map((topic, index) => {
    const question = { role: 'user' as const, content: `Prompt ${index}: tell me about ${topic}.` };
    if (index % 3 !== 2) return [question];
    // Every third prompt carries history, so the saved state covers a longer sequence.
    return [
      { role: 'user' as const, content: `Earlier question ${index}: ${'what comes next? '.repeat(1 + (index % 5))}` },
      { role: 'assistant' as const, content: `An earlier answer about ${topic}, ${'with some detail, '.repeat(2 + (index % 4))}and an end.` },
      question,
    ];
  });
}

interface Continuation { tokens: number[]; probabilities: number[] }

async function continueFrom(engine: Engine, slot: Slot, lastToken: number, maxTokens: number): Promise<Continuation> {
  const tokens: number[] = [];
  const probabilities: number[] = [];
  for await (const generated of engine.generate(slot, [lastToken], { ...GREEDY, maxTokens }, undefined, { probabilities: true })) {
    if (generated.token === null) continue;
    tokens.push(generated.token);
    if (generated.probability === undefined) throw new Error('generate was asked for probabilities');
    probabilities.push(generated.probability);
  }
  return { tokens, probabilities };
}

/** Index of the first token where the two differ (in token or in length); null when identical. */
function firstDivergence(a: readonly number[], b: readonly number[]): number | null {
  const shorter = Math.min(a.length, b.length);
  for (let index = 0; index < shorter; index++) if (a[index] !== b[index]) return index;
  return a.length === b.length ? null : shorter;
}

interface Comparison { identical: boolean; divergence: number | null; firstProbabilityDelta: number; prefixProbabilityDelta: number }

function compare(reference: Continuation, restored: Continuation): Comparison {
  const divergence = firstDivergence(reference.tokens, restored.tokens);
  const common = divergence ?? reference.tokens.length;
  let prefixProbabilityDelta = 0;
  for (let index = 0; index < common; index++) {
    prefixProbabilityDelta = Math.max(prefixProbabilityDelta, Math.abs(reference.probabilities[index]! - restored.probabilities[index]!));
  }
  const firstProbabilityDelta = reference.tokens[0] === restored.tokens[0] ? Math.abs(reference.probabilities[0]! - restored.probabilities[0]!) : Number.NaN;
  return { identical: divergence === null, divergence, firstProbabilityDelta, prefixProbabilityDelta };
}

interface PresetResult {
  preset: ModelPresetName;
  prompts: number;
  tokens: number;
  f32: Comparison[];
  bf16: Comparison[];
  /** Payload bytes (no header) of the last prompt's state, and its token count. */
  f32Bytes: number;
  bf16Bytes: number;
  heldTokens: number;
  recurrentShare: number;
}

async function measurePreset(preset: ModelPresetName, promptCount: number, maxTokens: number): Promise<PresetResult> {
  const engine = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED), device: 'cpu', slots: 2, contextSize: 1024 });
  const result: PresetResult = { preset, prompts: promptCount, tokens: maxTokens, f32: [], bf16: [], f32Bytes: 0, bf16Bytes: 0, heldTokens: 0, recurrentShare: 0 };
  try {
    const [original, restored] = [engine.acquireSlot()!, engine.acquireSlot()!];
    for (const [index, messages] of prompts(promptCount).entries()) {
      progress(`${preset}: prompt ${index + 1}/${promptCount}`);
      const prompt = engine.tokenizeChat(messages);
      await engine.resetSlot(original);
      await engine.evaluate(original, prompt.slice(0, -1));
      const snapshots = { f32: await engine.exportState(original, { encoding: 'f32' }), bf16: await engine.exportState(original, { encoding: 'bf16' }) };
      result.f32Bytes = snapshots.f32.length - SNAPSHOT_HEADER_BYTES;
      result.bf16Bytes = snapshots.bf16.length - SNAPSHOT_HEADER_BYTES;
      result.heldTokens = prompt.length - 1;
      const totals = sectionTotals(parseSequenceState(snapshots.f32.subarray(SNAPSHOT_HEADER_BYTES)).sections);
      result.recurrentShare = (totals['recurrent-conv'] + totals['recurrent-ssm']) / result.f32Bytes;
      const reference = await continueFrom(engine, original, prompt.at(-1)!, maxTokens);
      for (const encoding of ['f32', 'bf16'] as const) {
        await engine.resetSlot(restored);
        await engine.importState(restored, snapshots[encoding]);
        result[encoding].push(compare(reference, await continueFrom(engine, restored, prompt.at(-1)!, maxTokens)));
      }
    }
  } finally {
    await engine.close();
  }
  return result;
}

const formatDelta = (values: number[]) => {
  const defined = values.filter((value) => !Number.isNaN(value));
  if (defined.length === 0) return 'n/a';
  const largest = Math.max(...defined);
  return largest === 0 ? '0' : largest.toExponential(2);
};

function driftRow(result: PresetResult, encoding: 'f32' | 'bf16'): Array<string | number> {
  const comparisons = result[encoding];
  const divergences = comparisons.map((comparison) => comparison.divergence).filter((divergence): divergence is number => divergence !== null);
  return [
    result.preset,
    encoding,
    `${comparisons.filter((comparison) => comparison.identical).length} / ${comparisons.length}`,
    divergences.length === 0 ? 'none' : Math.min(...divergences),
    formatDelta(comparisons.map((comparison) => comparison.firstProbabilityDelta)),
    formatDelta(comparisons.map((comparison) => comparison.prefixProbabilityDelta)),
  ];
}

const MIB = 1024 * 1024;

export const snapshotDriftCase: BenchCase = {
  name: 'snapshot-drift',
  description: 'greedy continuations after restoring f32 vs bf16 recurrent state, tiny and small; bytes per state',
  async run({ quick }) {
    const promptCount = quick ? 4 : 24;
    const maxTokens = quick ? 32 : 256;
    const results: PresetResult[] = [];
    for (const preset of ['tiny', 'small'] as const) results.push(await measurePreset(preset, promptCount, maxTokens));

    const bamba = MODEL_PRESETS['bamba-9b-shape'];
    const bambaF32 = estimateStateBytes(bamba, 1);
    const bambaBf16 = estimateStateBytes(bamba, 1, 'bf16');
    const sizeRows: Array<Array<string | number>> = results.map((result) => [
      result.preset, result.heldTokens, result.f32Bytes.toLocaleString('en-US'), result.bf16Bytes.toLocaleString('en-US'),
      round(result.bf16Bytes / result.f32Bytes, 3), `${round(result.recurrentShare * 100, 2)} %`, 'measured',
    ]);
    sizeRows.push([
      'bamba-9b-shape', 1, bambaF32.totalBytes.toLocaleString('en-US'), bambaBf16.totalBytes.toLocaleString('en-US'),
      round(bambaBf16.totalBytes / bambaF32.totalBytes, 3), `${round((bambaF32.fixedBytes / bambaF32.totalBytes) * 100, 3)} %`,
      `computed (${round(bambaF32.totalBytes / MIB, 1)} → ${round(bambaBf16.totalBytes / MIB, 1)} MiB; llama.cpp adds ~800 B of records)`,
    ]);
    return {
      raw: { results, bamba: { f32: bambaF32, bf16: bambaBf16 } },
      tables: [
        {
          title: 'Snapshot drift: f32 vs bf16 recurrent state',
          note: `${promptCount} distinct chat prompts per preset (every third with a turn of history), CPU. The prompt but its last token is evaluated in a slot and exported both ways; each snapshot is restored into another slot and continued greedily for ${maxTokens} tokens from the last prompt token, against the original slot continuing uninterrupted. "Probability" is the probability the engine reports for the chosen token (node-llama-cpp's confidence); first token, and the largest over the tokens both runs share before any divergence.`,
          columns: ['preset', 'stored as', `identical ${maxTokens}-token continuations`, 'earliest divergence (token index)', 'max Δp, first token', 'max Δp, common prefix'],
          rows: results.flatMap((result) => [driftRow(result, 'f32'), driftRow(result, 'bf16')]),
        },
        {
          title: 'Snapshot bytes: f32 vs bf16 recurrent state',
          note: 'Payload bytes without our 128-byte header. tiny and small: the last drift prompt\'s state as exported; bamba-9b-shape: computed from the layout (29 Mamba2 layers of conv + SSM state, 3 attention layers of F16 K/V) at 1 token. Recurrent share: the conv + SSM tensors\' part of the f32 payload; attention K/V and llama.cpp\'s records are unchanged by bf16.',
          columns: ['model', 'tokens held', 'f32 (B)', 'bf16 (B)', 'bf16 / f32', 'recurrent share of f32', 'source'],
          rows: sizeRows,
        },
      ],
    };
  },
};
