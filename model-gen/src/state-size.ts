/**
 * Per-sequence state bytes of a `granitehybrid` model, computed from its shape: the memory
 * argument of the project. Mamba2 layers keep a fixed conv + SSM state (F32, or BF16 in a
 * snapshot stored with recurrent state as bf16); attention layers
 * keep F16 K and V per token; llama.cpp adds a small per-cell record per token. The header
 * bytes llama.cpp adds to a state file (a few hundred) are not included.
 */
import { ssmInnerSize, type ModelShape } from './presets.js';
import type { TransformerShape } from './transformer-plan.js';

const F32_BYTES = 4;
const F16_BYTES = 2;
const BF16_BYTES = 2;
/** llama.cpp's per-token cell record in a state file (position, sequence ids, token). */
const CELL_RECORD_BYTES = 16;

export interface StateSizeEstimate {
  /** Bytes that do not depend on history length (all Mamba2 layers). */
  fixedBytes: number;
  /** Bytes added per token of history (attention K/V and cell records). */
  perTokenBytes: number;
  /** Total for the given history length. */
  totalBytes: number;
}

/**
 * `recurrentEncoding`: how the Mamba2 conv and SSM state is stored: `f32` as llama.cpp keeps it
 * (default), `bf16` as a snapshot with the recurrentBf16 encoding stores it.
 */
export function estimateStateBytes(shape: ModelShape, tokens: number, recurrentEncoding: 'f32' | 'bf16' = 'f32'): StateSizeEstimate {
  const innerSize = ssmInnerSize(shape);
  const { convKernel, stateSize, groupCount } = shape.ssm;
  const recurrentLayers = shape.blockCount - shape.attentionLayers.length;
  const valueBytes = recurrentEncoding === 'bf16' ? BF16_BYTES : F32_BYTES;
  const convStateBytes = (convKernel - 1) * (innerSize + 2 * groupCount * stateSize) * valueBytes;
  const ssmStateBytes = stateSize * innerSize * valueBytes;
  const fixedBytes = recurrentLayers * (convStateBytes + ssmStateBytes);
  const headDim = shape.embeddingLength / shape.headCount;
  const perTokenBytes = shape.attentionLayers.length * 2 * shape.headCountKv * headDim * F16_BYTES + CELL_RECORD_BYTES;
  return { fixedBytes, perTokenBytes, totalBytes: fixedBytes + perTokenBytes * tokens };
}

/** The KV cache of a plain transformer with `layers` attention layers, F16 K and V. */
export function transformerKvBytes(shapeOf: { layers: number; kvHeads: number; headDim: number }, tokens: number): number {
  return shapeOf.layers * 2 * shapeOf.kvHeads * shapeOf.headDim * F16_BYTES * tokens;
}

/** The K/V shape of a generated transformer preset. */
export function transformerKvShape(shape: Pick<TransformerShape, 'blockCount' | 'headCountKv' | 'headCount' | 'embeddingLength'>): { layers: number; kvHeads: number; headDim: number } {
  return { layers: shape.blockCount, kvHeads: shape.headCountKv, headDim: shape.embeddingLength / shape.headCount };
}

/** Llama 3.1 8B: 32 layers, 8 KV heads of 128 (128 KiB per token). */
export const LLAMA_3_1_8B_KV_SHAPE = { layers: 32, kvHeads: 8, headDim: 128 } as const;
