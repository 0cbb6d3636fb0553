/**
 * The memory argument of the project: per-conversation state of a bamba-9b-shape model against
 * the KV cache a Llama-3.1-8B-shaped transformer needs for the same history. The Bamba figures
 * come from the state-size formula, which the tests check against snapshots measured on the
 * tiny, small and granite presets; the transformer's from its shape (32 layers × 8 KV heads × 128).
 */
import { estimateStateBytes, LLAMA_3_1_8B_KV_SHAPE, MODEL_PRESETS, transformerKvBytes } from '@bamba/model-gen';
import type { BenchCase } from '../case.js';
import { round } from '../measure.js';

const MIB = 1024 * 1024;

export const stateSizeCase: BenchCase = {
  name: 'state-size',
  description: 'bamba-9b-shape state bytes (f32 and bf16 recurrent state) vs a Llama-3.1-8B-shaped KV cache at 1, 1K, 8K, 32K tokens',
  async run() {
    const rows = [1, 1024, 8192, 32768].map((tokens) => {
      const bamba = estimateStateBytes(MODEL_PRESETS['bamba-9b-shape'], tokens).totalBytes;
      const bambaBf16 = estimateStateBytes(MODEL_PRESETS['bamba-9b-shape'], tokens, 'bf16').totalBytes;
      const llama = transformerKvBytes(LLAMA_3_1_8B_KV_SHAPE, tokens);
      return [tokens, round(bamba / MIB, 1), round(bambaBf16 / MIB, 1), round(llama / MIB, 1), round(llama / bamba, 3)];
    });
    return {
      raw: { rows },
      tables: [{
        title: 'State size: bamba-9b-shape vs a Llama-3.1-8B-shaped transformer',
        note: 'Bytes of one conversation\'s state. Bamba: 29 Mamba2 layers of fixed conv + SSM state (F32) plus 3 attention layers of F16 K/V per token; the formula matches measured snapshots of the small presets within a few hundred bytes. "bf16 snapshot": the same state stored with BAMBA_SNAPSHOT_ENCODING=bf16 (conv + SSM as BF16, K/V unchanged). Llama 3.1 8B: 128 KiB of F16 K/V per token.',
        columns: ['history (tokens)', 'bamba-9b-shape state (MiB)', 'bamba-9b-shape bf16 snapshot (MiB)', 'Llama-3.1-8B KV cache (MiB)', 'transformer / hybrid'],
        rows,
      }],
    };
  },
};
