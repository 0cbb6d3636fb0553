/**
 * A plain Llama-architecture transformer with random weights: the baseline the hybrid is
 * compared against in GPU benchmarks (Llama-3.1-8B's shape), and a tiny one for dry runs.
 * Same tokenizer and chat template as the hybrid presets, so prompts tokenize identically.
 */
import { gguf, type GgufDocument, type GgufTensorSpec, type GgufValue } from './gguf-writer.js';
import { generatorMetadata, tokenizerMetadata } from './common-metadata.js';
import { silentUnusedRows } from './model-plan.js';
import { buildVocabulary } from './vocabulary.js';
import { f16RandomFiller, f32Filler } from './weights.js';

export interface TransformerShape {
  preset: string;
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  ropeFreqBase: number;
  paddedVocabSize: number;
}

export const TRANSFORMER_PRESETS = {
  /** Llama 3.1 8B: 32 layers, hidden 4096, 32/8 heads, FFN 14336, 128k vocabulary. */
  'llama-3.1-8b-shape': { preset: 'llama-3.1-8b-shape', contextLength: 32768, embeddingLength: 4096, blockCount: 32, headCount: 32, headCountKv: 8, feedForwardLength: 14336, ropeFreqBase: 500000, paddedVocabSize: 128256 },
  /** For CPU dry runs of the GPU benchmark. */
  'llama-tiny-shape': { preset: 'llama-tiny-shape', contextLength: 4096, embeddingLength: 128, blockCount: 4, headCount: 4, headCountKv: 2, feedForwardLength: 256, ropeFreqBase: 10000, paddedVocabSize: 0 },
} as const satisfies Record<string, TransformerShape>;

export type TransformerPresetName = keyof typeof TRANSFORMER_PRESETS;

export function planTransformer(shape: TransformerShape, seed: number): { document: GgufDocument; parameterCount: number } {
  const vocabulary = buildVocabulary(shape.paddedVocabSize);
  const vocabSize = vocabulary.tokens.length;
  const embedding = shape.embeddingLength;
  const headDim = embedding / shape.headCount;
  const key = (name: string) => `llama.${name}`;
  const metadata: Array<[string, GgufValue]> = [
    ...generatorMetadata('llama', shape.preset, seed, true),
    [key('context_length'), gguf.u32(shape.contextLength)],
    [key('embedding_length'), gguf.u32(embedding)],
    [key('block_count'), gguf.u32(shape.blockCount)],
    [key('feed_forward_length'), gguf.u32(shape.feedForwardLength)],
    [key('attention.head_count'), gguf.u32(shape.headCount)],
    [key('attention.head_count_kv'), gguf.u32(shape.headCountKv)],
    [key('attention.layer_norm_rms_epsilon'), gguf.f32(1e-5)],
    [key('rope.freq_base'), gguf.f32(shape.ropeFreqBase)],
    [key('rope.dimension_count'), gguf.u32(headDim)],
    [key('vocab_size'), gguf.u32(vocabSize)],
    ...tokenizerMetadata(vocabulary),
  ];
  const tensors: GgufTensorSpec[] = [];
  const matrix = (name: string, dims: number[], fanIn: number) => tensors.push({ name, dims, type: 'F16', createFiller: f16RandomFiller(seed, name, 1 / Math.sqrt(fanIn)) });
  const ones = (name: string) => tensors.push({ name, dims: [embedding], type: 'F32', createFiller: f32Filler(() => 1) });
  matrix('token_embd.weight', [embedding, vocabSize], 1);
  ones('output_norm.weight');
  matrix('output.weight', [embedding, vocabSize], embedding / 16);
  silentUnusedRows(tensors.at(-1)!, vocabulary.usedTokenCount);
  for (let layer = 0; layer < shape.blockCount; layer++) {
    const block = (name: string) => `blk.${layer}.${name}`;
    ones(block('attn_norm.weight'));
    matrix(block('attn_q.weight'), [embedding, headDim * shape.headCount], embedding);
    matrix(block('attn_k.weight'), [embedding, headDim * shape.headCountKv], embedding);
    matrix(block('attn_v.weight'), [embedding, headDim * shape.headCountKv], embedding);
    matrix(block('attn_output.weight'), [headDim * shape.headCount, embedding], embedding);
    ones(block('ffn_norm.weight'));
    matrix(block('ffn_gate.weight'), [embedding, shape.feedForwardLength], embedding);
    matrix(block('ffn_up.weight'), [embedding, shape.feedForwardLength], embedding);
    matrix(block('ffn_down.weight'), [shape.feedForwardLength, embedding], shape.feedForwardLength);
  }
  const parameterCount = tensors.reduce((sum, tensor) => sum + tensor.dims.reduce((product, dim) => product * dim, 1), 0);
  return { document: { metadata, tensors }, parameterCount };
}
