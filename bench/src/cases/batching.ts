/**
 * Continuous batching: aggregate tokens/s of the engine at concurrency 1, 2, 4 and 8 on the
 * tiny and small presets (one context, one slot per request, decoding together), and the
 * scaling ratio against concurrency 1.
 */
import { resolve } from 'node:path';
import { createLlamaEngine, GREEDY } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, type ModelPresetName } from '@bamba/model-gen';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';

const CONCURRENCY = [1, 2, 4, 8];

export const batchingCase: BenchCase = {
  name: 'batching',
  description: 'aggregate tokens/s at concurrency 1, 2, 4, 8 on tiny and small (engine in-process)',
  async run({ quick }) {
    const rows: Array<Array<string | number>> = [];
    const raw: Record<string, Record<number, number>> = {};
    for (const [preset, isolatePrompts] of [['tiny', true], ['tiny', false], ['small', true], ['small', false]] as Array<[ModelPresetName, boolean]>) {
      const maxTokens = preset === 'tiny' ? 128 : 48;
      const engine = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED), device: 'cpu', slots: 8, contextSize: 1024, isolatePrompts });
      const label = `${preset}${isolatePrompts ? '' : ' (prompts not isolated)'}`;
      raw[label] = {};
      try {
        for (const concurrency of CONCURRENCY) {
          progress(`${label}, concurrency ${concurrency}`);
          const rates: number[] = [];
          for (let round_ = 0; round_ < (quick ? 1 : 3); round_++) {
            const started = performance.now();
            const counts = await Promise.all(Array.from({ length: concurrency }, async (_, index) => {
              const slot = engine.acquireSlot()!;
              let tokens = 0;
              for await (const _token of engine.generate(slot, engine.tokenizeChat([{ role: 'user', content: `request ${round_}-${index}` }]), { ...GREEDY, maxTokens })) if (_token.token !== null) tokens++;
              await engine.releaseSlot(slot);
              return tokens;
            }));
            rates.push((counts.reduce((sum, count) => sum + count, 0) / (performance.now() - started)) * 1000);
          }
          raw[label]![concurrency] = median(rates);
        }
      } finally {
        await engine.close();
      }
      for (const concurrency of CONCURRENCY) rows.push([label, concurrency, round(raw[label]![concurrency]!, 0), round(raw[label]![concurrency]! / raw[label]![1]!, 2)]);
    }
    return {
      raw,
      tables: [{
        title: 'Continuous batching (engine in-process)',
        note: 'Concurrent greedy generations in one context (one slot each), all started at once, 1 thread; aggregate generated tokens per second including prompt evaluation, median of 3 rounds. By default each prompt is evaluated alone (BAMBA_ISOLATE_PROMPTS=true: answers do not depend on load); "prompts not isolated" lets prompts share batches with other slots\' decode steps.',
        columns: ['preset', 'concurrency', 'tokens/s', 'scaling vs concurrency 1'],
        rows,
      }],
    };
  },
};
