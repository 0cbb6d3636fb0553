/**
 * Deterministic random weights. Each tensor draws from its own generator seeded by the model
 * seed and the tensor's name, so a file's bytes depend on (seed, shapes) only, never on the
 * order tensors are written in. Fast enough for a 9B-parameter file: F16 values are built
 * directly as bit patterns (random sign and mantissa, fixed exponent), no float conversion.
 */
import type { TensorChunkFiller } from './gguf-writer.js';

function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** xorshift32 seeded through one splitmix-style scramble; never zero. */
export function createRandom(seed: number, stream: string): () => number {
  let state = (fnv1a32(stream) ^ Math.imul(seed + 1, 0x9e3779b9)) >>> 0;
  state = Math.imul(state ^ (state >>> 16), 0x85ebca6b) >>> 0;
  state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35) >>> 0;
  if (state === 0) state = 0x6d2b79f5;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}

/**
 * F16 values with random sign and mantissa and magnitude in [scale, 2·scale), where scale is
 * rounded down to a power of two. Used for every weight matrix.
 */
export function f16RandomFiller(seed: number, name: string, scale: number): () => TensorChunkFiller {
  const exponentField = Math.min(30, Math.max(1, Math.floor(Math.log2(scale)) + 15));
  const pattern = exponentField << 10;
  return () => {
    const next = createRandom(seed, name);
    return (chunk) => {
      if (chunk.byteOffset % 4 === 0 && chunk.length % 4 === 0) {
        const words = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length / 4);
        const pair = (pattern | (pattern << 16)) >>> 0;
        for (let index = 0; index < words.length; index++) words[index] = ((next() & 0x83ff83ff) | pair) >>> 0;
      } else {
        const halves = new Uint16Array(chunk.buffer, chunk.byteOffset, chunk.length / 2);
        for (let index = 0; index < halves.length; index++) halves[index] = (next() & 0x83ff) | pattern;
      }
    };
  };
}

/** F32 values from a function of the element index (small tensors: norms, SSM parameters). */
export function f32Filler(valueAt: (index: number) => number): () => TensorChunkFiller {
  return () => {
    let elementIndex = 0;
    return (chunk) => {
      const floats = new Float32Array(chunk.buffer, chunk.byteOffset, chunk.length / 4);
      for (let index = 0; index < floats.length; index++) floats[index] = valueAt(elementIndex++);
    };
  };
}

/** F32 values uniform in [low, high), deterministic per (seed, name). */
export function f32UniformFiller(seed: number, name: string, low: number, high: number): () => TensorChunkFiller {
  return () => {
    const next = createRandom(seed, name);
    return f32Filler(() => low + (next() / 0x1_0000_0000) * (high - low))();
  };
}
