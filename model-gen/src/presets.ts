/**
 * Shapes of the models `bamba model tiny` generates. All are `granitehybrid` (the llama.cpp
 * architecture Bamba and Granite 4.0 H convert to): Mamba2 layers with head dim 64 and state
 * size 128 like Bamba-9B, plus a few full-attention layers.
 */

/** Mamba2 in llama.cpp supports only an inner size of twice the embedding (`ssm.inner_size`). */
const SSM_EXPANSION = 2;

/** A Mamba2 layer's inner size for this shape. */
export function ssmInnerSize(shape: Pick<ModelShape, 'embeddingLength'>): number {
  return SSM_EXPANSION * shape.embeddingLength;
}

export interface ModelShape {
  /** Preset name, recorded in `general.name`. */
  preset: string;
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  /** Indices of the full-attention layers; every other layer is Mamba2. */
  attentionLayers: readonly number[];
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  ssm: { convKernel: number; stateSize: number; headCount: number; groupCount: number };
  /** RoPE on the attention layers (Bamba: yes; Granite 4.0 H: no). */
  rope: boolean;
  ropeFreqBase: number;
  /** Mixture-of-experts FFN with a shared expert (Granite 4.0 H). */
  moe?: { expertCount: number; expertUsedCount: number; sharedFeedForwardLength: number };
  /** Granite's scalar multipliers, when the family uses them. */
  graniteScales?: { embedding: number; residual: number; attention: number; logit: number };
  /** Vocabulary rows (the character vocabulary padded with unused tokens), 0 for unpadded. */
  paddedVocabSize: number;
  /** Storage type of the weight matrices (norms and SSM parameters are always F32). */
  weightType: 'F32' | 'F16';
}

export const MODEL_PRESETS = {
  /** The test and demo model: four layers, one of them attention with RoPE and GQA. */
  tiny: {
    preset: 'tiny', contextLength: 4096, embeddingLength: 128, blockCount: 4, attentionLayers: [2],
    headCount: 4, headCountKv: 2, feedForwardLength: 256,
    ssm: { convKernel: 4, stateSize: 128, headCount: 4, groupCount: 1 },
    rope: true, ropeFreqBase: 10000, paddedVocabSize: 0, weightType: 'F32',
  },
  /**
   * The tiny model with Bamba-9B's vocabulary size (the character vocabulary padded with unused
   * tokens): what work over the whole vocabulary per token costs (logprobs, grammars), measured
   * on a CPU.
   */
  'tiny-wide-vocab': {
    preset: 'tiny-wide-vocab', contextLength: 4096, embeddingLength: 128, blockCount: 4, attentionLayers: [2],
    headCount: 4, headCountKv: 2, feedForwardLength: 256,
    ssm: { convKernel: 4, stateSize: 128, headCount: 4, groupCount: 1 },
    rope: true, ropeFreqBase: 10000, paddedVocabSize: 128256, weightType: 'F32',
  },
  /** Tens of millions of parameters: prefill cost is visible on a CPU. */
  small: {
    preset: 'small', contextLength: 16384, embeddingLength: 512, blockCount: 12, attentionLayers: [4, 9],
    headCount: 8, headCountKv: 2, feedForwardLength: 1536,
    ssm: { convKernel: 4, stateSize: 128, headCount: 16, groupCount: 1 },
    rope: true, ropeFreqBase: 10000, paddedVocabSize: 0, weightType: 'F16',
  },
  /** Bamba-9B's dimensions, random F16 weights: for state-size and GPU measurements. */
  'bamba-9b-shape': {
    preset: 'bamba-9b-shape', contextLength: 32768, embeddingLength: 4096, blockCount: 32, attentionLayers: [9, 18, 27],
    headCount: 32, headCountKv: 8, feedForwardLength: 14336,
    ssm: { convKernel: 4, stateSize: 128, headCount: 128, groupCount: 1 },
    rope: true, ropeFreqBase: 10000, paddedVocabSize: 128256, weightType: 'F16',
  },
  /** A small Granite 4.0 H: no RoPE, MoE FFN with a shared expert, Granite multipliers. */
  'granite-4.0-h-shape': {
    preset: 'granite-4.0-h-shape', contextLength: 4096, embeddingLength: 256, blockCount: 6, attentionLayers: [2, 5],
    headCount: 4, headCountKv: 2, feedForwardLength: 128,
    ssm: { convKernel: 4, stateSize: 128, headCount: 8, groupCount: 1 },
    rope: false, ropeFreqBase: 10000,
    moe: { expertCount: 8, expertUsedCount: 2, sharedFeedForwardLength: 256 },
    graniteScales: { embedding: 12, residual: 0.22, attention: 0.0078125, logit: 6 },
    paddedVocabSize: 0, weightType: 'F32',
  },
} as const satisfies Record<string, ModelShape>;

export type ModelPresetName = keyof typeof MODEL_PRESETS;
export const MODEL_PRESET_NAMES = Object.keys(MODEL_PRESETS) as ModelPresetName[];

export function isModelPresetName(name: string): name is ModelPresetName {
  return Object.hasOwn(MODEL_PRESETS, name);
}
