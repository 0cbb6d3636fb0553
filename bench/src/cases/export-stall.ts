/**
 * How long exporting one sequence's state stalls the others: three slots decode long greedy
 * answers while a fourth slot's state (H tokens) is exported again and again; for the decoding
 * slots, the largest gap between two tokens that overlaps an export, divided by their median gap
 * (1: no stall at all). llama.cpp saves a sequence under the context-wide lock, so every other
 * sequence waits for the copy; what we control is that the lock is held only while llama.cpp
 * writes the state to RAM (/dev/shm), never while the bytes travel to Redis, and that the export
 * starts between decode steps. In-process engine, one thread.
 */
import { resolve } from 'node:path';
import { createLlamaEngine, GREEDY, type Engine } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';

export const DECODERS = 3;
/** Long enough answers that several exports happen while every decoder still runs. */
const ANSWER_TOKENS = { tiny: 2000, small: 600 } as const;

export interface StallFigures { exports: number; exportMs: number; medianGapMs: number; worstGapDuringExportMs: number; worstGapElsewhereMs: number; stateMB: number }

/** On an engine with at least DECODERS + 1 free slots. */
export async function measureExportStall(engine: Engine, history: number, exportsWanted: number, answerTokens: number): Promise<StallFigures> {
  const exporter = engine.acquireSlot()!;
  await engine.evaluate(exporter, engine.tokenize('The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(history / 45)).slice(0, history)));
  const decoders = Array.from({ length: DECODERS }, () => engine.acquireSlot()!);
  const times: number[][] = decoders.map(() => []);
  const windows: Array<[number, number]> = [];
  let decoding = DECODERS;
  let bytes = 0;
  const runs = decoders.map(async (slot, index) => {
    const stream = engine.generate(slot, engine.tokenize(`Decoder ${index} says: `), { ...GREEDY, maxTokens: answerTokens });
    for await (const _token of stream) times[index]!.push(performance.now());
    decoding -= 1;
  });
  // Exports start once decoding runs steadily, and repeat while it does.
  while (times.some((list) => list.length < 30)) await new Promise((done) => setTimeout(done, 5));
  while (decoding === DECODERS && windows.length < exportsWanted) {
    const started = performance.now();
    bytes = (await engine.exportState(exporter)).length;
    windows.push([started, performance.now()]);
    await new Promise((done) => setTimeout(done, 60));
  }
  await Promise.all(runs);
  for (const slot of [exporter, ...decoders]) await engine.releaseSlot(slot);
  const gaps: Array<{ from: number; to: number }> = times.flatMap((list) => list.slice(1).map((to, index) => ({ from: list[index]!, to })));
  const overlaps = (gap: { from: number; to: number }) => windows.some(([start, end]) => gap.from < end && gap.to > start);
  const during = gaps.filter(overlaps).map((gap) => gap.to - gap.from);
  const elsewhere = gaps.filter((gap) => !overlaps(gap)).map((gap) => gap.to - gap.from);
  return {
    exports: windows.length,
    exportMs: median(windows.map(([start, end]) => end - start)),
    medianGapMs: median(gaps.map((gap) => gap.to - gap.from)),
    worstGapDuringExportMs: Math.max(...during),
    worstGapElsewhereMs: Math.max(...elsewhere),
    stateMB: bytes / 1e6,
  };
}

export const STALL_COLUMNS = ['preset', 'H (tokens)', 'state MB', 'exports', 'export (ms)', 'median gap (ms)', 'worst gap during export (ms)', 'worst gap otherwise (ms)', 'worst during ÷ median'];

export function stallRow(model: string, history: number, figures: StallFigures): Array<string | number> {
  return [model, history, round(figures.stateMB, 2), figures.exports, round(figures.exportMs, 1), round(figures.medianGapMs, 1), round(figures.worstGapDuringExportMs, 1), round(figures.worstGapElsewhereMs, 1), round(figures.worstGapDuringExportMs / figures.medianGapMs, 2)];
}

export const exportStallCase: BenchCase = {
  name: 'export-stall',
  description: "other slots' largest inter-token gap during a state export ÷ their median gap (tiny, small)",
  async run({ quick }) {
    const presets = quick ? (['tiny'] as const) : (['tiny', 'small'] as const);
    const histories = quick ? [1024] : [1024, 3072];
    const rows: Array<Array<string | number>> = [];
    const raw: Record<string, StallFigures> = {};
    for (const preset of presets) {
      const engine = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED), device: 'cpu', slots: DECODERS + 1, contextSize: 4096, threads: 1 });
      try {
        for (const history of histories) {
          progress(`${preset}, H=${history}`);
          const figures = await measureExportStall(engine, history, quick ? 3 : 8, ANSWER_TOKENS[preset]);
          raw[`${preset}-${history}`] = figures;
          rows.push(stallRow(preset, history, figures));
        }
      } finally {
        await engine.close();
      }
    }
    return {
      raw,
      tables: [{
        title: 'Export stall: other slots during a state export',
        note: `${DECODERS} slots decode long greedy answers (tiny ${ANSWER_TOKENS.tiny} tokens, small ${ANSWER_TOKENS.small}) (batched decode steps) while a fourth slot holding H tokens of state is exported repeatedly (60 ms apart). Gaps are between consecutive tokens of the decoding slots; "during export" are gaps that overlap an export. In-process engine, 1 thread, 2-core machine. Goal: worst gap during an export ≤ 2× the median gap. A 9B-sized state cannot be measured here (its weights do not fit this machine's CPU budget in reasonable time); see bench/gpu/.`,
        columns: STALL_COLUMNS,
        rows,
      }],
    };
  },
};
