/**
 * Turns a preset shape and a seed into a complete GGUF document: the `granitehybrid` metadata
 * llama.cpp reads, the tokenizer, and one tensor spec per weight with its deterministic filler.
 * Planning costs nothing; bytes are produced only when the document is written.
 */
import { gguf, tensorDataBytes, type GgufDocument, type GgufTensorSpec, type GgufValue } from './gguf-writer.js';
import { ssmInnerSize, type ModelShape } from './presets.js';
import { generatorMetadata, tokenizerMetadata } from './common-metadata.js';
import { buildVocabulary } from './vocabulary.js';
import { createRandom, f16RandomFiller, f32Filler, f32UniformFiller } from './weights.js';

const ARCHITECTURE = 'granitehybrid';
const RMS_EPSILON = 1e-5;
/** Logits several times larger than unit scale make greedy choices clear rather than near-ties. */
const OUTPUT_SCALE_FACTOR = 4;
/**
 * End-of-text's output row is scaled down so a random model writes answers of useful length
 * instead of often ending at once; end-of-text stays reachable when sampling.
 */
const EOS_LOGIT_GAIN = 0.25;

export interface ModelPlan {
  shape: ModelShape;
  seed: number;
  document: GgufDocument;
  vocabSize: number;
  /** Parameter count over all tensors. */
  parameterCount: number;
}

export function planModel(shape: ModelShape, seed: number): ModelPlan {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be a uint32, got ${seed}`);
  const vocabulary = buildVocabulary(shape.paddedVocabSize);
  const vocabSize = vocabulary.tokens.length;
  const embedding = shape.embeddingLength;
  const headDim = embedding / shape.headCount;
  const innerSize = ssmInnerSize(shape);
  const { convKernel, stateSize, headCount: ssmHeads, groupCount } = shape.ssm;
  const convChannels = innerSize + 2 * groupCount * stateSize;
  const inProjection = 2 * innerSize + 2 * groupCount * stateSize + ssmHeads;
  const attention = new Set(shape.attentionLayers);
  const key = (name: string) => `${ARCHITECTURE}.${name}`;

  const metadata: Array<[string, GgufValue]> = [
    ...generatorMetadata(ARCHITECTURE, shape.preset, seed, shape.weightType === 'F16'),
    [key('context_length'), gguf.u32(shape.contextLength)],
    [key('embedding_length'), gguf.u32(embedding)],
    [key('block_count'), gguf.u32(shape.blockCount)],
    [key('feed_forward_length'), gguf.u32(shape.feedForwardLength)],
    [key('attention.head_count'), gguf.u32(shape.headCount)],
    [key('attention.head_count_kv'), gguf.u32s(Array.from({ length: shape.blockCount }, (_, layer) => (attention.has(layer) ? shape.headCountKv : 0)))],
    [key('attention.layer_norm_rms_epsilon'), gguf.f32(RMS_EPSILON)],
    [key('rope.freq_base'), gguf.f32(shape.ropeFreqBase)],
    [key('rope.dimension_count'), gguf.u32(headDim)],
    [key('rope.scaling.finetuned'), gguf.bool(shape.rope)],
    [key('ssm.conv_kernel'), gguf.u32(convKernel)],
    [key('ssm.inner_size'), gguf.u32(innerSize)],
    [key('ssm.state_size'), gguf.u32(stateSize)],
    [key('ssm.time_step_rank'), gguf.u32(ssmHeads)],
    [key('ssm.group_count'), gguf.u32(groupCount)],
    [key('vocab_size'), gguf.u32(vocabSize)],
  ];
  if (shape.moe) {
    metadata.push(
      [key('expert_count'), gguf.u32(shape.moe.expertCount)],
      [key('expert_used_count'), gguf.u32(shape.moe.expertUsedCount)],
      [key('expert_shared_feed_forward_length'), gguf.u32(shape.moe.sharedFeedForwardLength)],
    );
  }
  if (shape.graniteScales) {
    metadata.push(
      [key('embedding_scale'), gguf.f32(shape.graniteScales.embedding)],
      [key('residual_scale'), gguf.f32(shape.graniteScales.residual)],
      [key('attention.scale'), gguf.f32(shape.graniteScales.attention)],
      [key('logit_scale'), gguf.f32(shape.graniteScales.logit)],
    );
  }
  metadata.push(...tokenizerMetadata(vocabulary));

  const tensors: GgufTensorSpec[] = [];
  /** A weight matrix whose outputs have roughly unit scale for unit-scale inputs. */
  const matrix = (name: string, dims: number[], fanIn: number, gain = 1) =>
    tensors.push({ name, dims, type: shape.weightType, createFiller: shape.weightType === 'F16' ? f16RandomFiller(seed, name, gain / Math.sqrt(fanIn)) : f32RandomSigned(seed, name, gain / Math.sqrt(fanIn)) });
  const ones = (name: string, dims: number[]) => tensors.push({ name, dims, type: 'F32', createFiller: f32Filler(() => 1) });

  matrix('token_embd.weight', [embedding, vocabSize], 1);
  ones('output_norm.weight', [embedding]);
  matrix('output.weight', [embedding, vocabSize], embedding, OUTPUT_SCALE_FACTOR);
  quieterFirstRows(tensors.at(-1)!, embedding * (vocabulary.eosTokenId + 1), EOS_LOGIT_GAIN);
  silentUnusedRows(tensors.at(-1)!, vocabulary.usedTokenCount);

  for (let layer = 0; layer < shape.blockCount; layer++) {
    const block = (name: string) => `blk.${layer}.${name}`;
    ones(block('attn_norm.weight'), [embedding]);
    if (attention.has(layer)) {
      matrix(block('attn_q.weight'), [embedding, headDim * shape.headCount], embedding);
      matrix(block('attn_k.weight'), [embedding, headDim * shape.headCountKv], embedding);
      matrix(block('attn_v.weight'), [embedding, headDim * shape.headCountKv], embedding);
      matrix(block('attn_output.weight'), [headDim * shape.headCount, embedding], headDim * shape.headCount);
    } else {
      matrix(block('ssm_in.weight'), [embedding, inProjection], embedding);
      tensors.push({ name: block('ssm_conv1d.weight'), dims: [convKernel, convChannels], type: 'F32', createFiller: f32UniformFiller(seed, block('ssm_conv1d.weight'), -0.5, 0.5) });
      tensors.push({ name: block('ssm_conv1d.bias'), dims: [convChannels], type: 'F32', createFiller: f32UniformFiller(seed, block('ssm_conv1d.bias'), -0.1, 0.1) });
      tensors.push({ name: block('ssm_dt.bias'), dims: [ssmHeads], type: 'F32', createFiller: dtBiasFiller(seed, block('ssm_dt.bias')) });
      tensors.push({ name: block('ssm_a'), dims: [1, ssmHeads], type: 'F32', createFiller: ssmAFiller(seed, block('ssm_a')) });
      tensors.push({ name: block('ssm_d'), dims: [1, ssmHeads], type: 'F32', createFiller: f32Filler(() => 1) });
      ones(block('ssm_norm.weight'), [innerSize / groupCount, groupCount]);
      matrix(block('ssm_out.weight'), [innerSize, embedding], innerSize);
    }
    ones(block('ffn_norm.weight'), [embedding]);
    const feedForward = shape.feedForwardLength;
    if (shape.moe) {
      const { expertCount, sharedFeedForwardLength: shared } = shape.moe;
      tensors.push({ name: block('ffn_gate_inp.weight'), dims: [embedding, expertCount], type: 'F32', createFiller: f32RandomSigned(seed, block('ffn_gate_inp.weight'), 1 / Math.sqrt(embedding)) });
      matrix(block('ffn_gate_exps.weight'), [embedding, feedForward, expertCount], embedding);
      matrix(block('ffn_up_exps.weight'), [embedding, feedForward, expertCount], embedding);
      matrix(block('ffn_down_exps.weight'), [feedForward, embedding, expertCount], feedForward);
      matrix(block('ffn_gate_shexp.weight'), [embedding, shared], embedding);
      matrix(block('ffn_up_shexp.weight'), [embedding, shared], embedding);
      matrix(block('ffn_down_shexp.weight'), [shared, embedding], shared);
    } else {
      matrix(block('ffn_gate.weight'), [embedding, feedForward], embedding);
      matrix(block('ffn_up.weight'), [embedding, feedForward], embedding);
      matrix(block('ffn_down.weight'), [feedForward, embedding], feedForward);
    }
  }

  const parameterCount = tensors.reduce((sum, tensor) => sum + tensor.dims.reduce((product, dim) => product * dim, 1), 0);
  return { shape, seed, document: { metadata, tensors }, vocabSize, parameterCount };
}

/**
 * Zero the output rows (one per token, `dims[0]` values each) of a padded vocabulary's unused
 * tokens (ids from `usedTokens` on): their logit is then 0 while some text token's random logit
 * is above it (all of 100 below 0 has odds of 2^-100), so greedy decoding never writes one; they
 * have no text, and an answer of them would say nothing and could never be resumed from (its
 * text re-tokenizes to other tokens). Sampling still does: 128K logits of 0 hold much of the
 * probability mass (most of it on tiny-wide-vocab at temperature 1), so measurements on padded
 * random models decode greedily.
 */
export function silentUnusedRows(tensor: GgufTensorSpec, usedTokens: number): void {
  if (usedTokens < tensor.dims[1]!) tensor.zeroFromByte = tensorDataBytes({ dims: [tensor.dims[0]!, usedTokens], type: tensor.type });
}

/** Scale the first `elements` values of a tensor's data stream by `gain` (a power of two for F16). */
function quieterFirstRows(tensor: GgufTensorSpec, elements: number, gain: number): void {
  const createInner = tensor.createFiller;
  const exponentShift = Math.round(Math.log2(gain));
  tensor.createFiller = () => {
    const inner = createInner();
    let remaining = elements;
    return (chunk) => {
      inner(chunk);
      if (remaining === 0) return;
      if (tensor.type === 'F32') {
        const floats = new Float32Array(chunk.buffer, chunk.byteOffset, Math.min(remaining, chunk.length / 4));
        for (let index = 0; index < floats.length; index++) floats[index]! *= gain;
        remaining -= floats.length;
      } else {
        const halves = new Uint16Array(chunk.buffer, chunk.byteOffset, Math.min(remaining, chunk.length / 2));
        for (let index = 0; index < halves.length; index++) {
          const half = halves[index]!;
          halves[index] = (half & 0x83ff) | ((((half >> 10) & 0x1f) + exponentShift) << 10);
        }
        remaining -= halves.length;
      }
    };
  };
}

/** F32 with random sign, magnitude in [scale, 2·scale): the F32 twin of the F16 filler. */
function f32RandomSigned(seed: number, name: string, scale: number) {
  return () => {
    const next = createRandom(seed, name);
    return f32Filler(() => {
      const bits = next();
      return (bits & 1 ? -1 : 1) * scale * (1 + (bits >>> 1) / 0x8000_0000);
    })();
  };
}

/** Mamba2's A = −exp(A_log), A_log = log(U[1, 16]) as in the reference initialisation. */
function ssmAFiller(seed: number, name: string) {
  return () => {
    const next = createRandom(seed, name);
    return f32Filler(() => -(1 + 15 * (next() / 0x1_0000_0000)))();
  };
}

/** dt bias = softplus⁻¹(dt) with dt log-uniform in [0.001, 0.1], as in the reference. */
function dtBiasFiller(seed: number, name: string) {
  return () => {
    const next = createRandom(seed, name);
    return f32Filler(() => {
      const dt = Math.exp(Math.log(0.001) + (next() / 0x1_0000_0000) * (Math.log(0.1) - Math.log(0.001)));
      return dt + Math.log(-Math.expm1(-dt));
    })();
  };
}
