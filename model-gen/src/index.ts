/**
 * @bamba/model-gen: our GGUF writer and the preset models (random weights, nothing downloaded).
 * Tooling for the CLI, tests and benchmarks; the serving processes never load it.
 */
export * from './presets.js';
export * from './generate-model.js';
export * from './model-plan.js';
export { SPECIAL_TOKENS, CHAT_TEMPLATE } from './vocabulary.js';
export { estimateStateBytes, transformerKvBytes, transformerKvShape, LLAMA_3_1_8B_KV_SHAPE } from './state-size.js';
export { planTransformer, TRANSFORMER_PRESETS, type TransformerPresetName } from './transformer-plan.js';
export { writeGguf, ggufFileBytes, hostWeightsManifest } from './gguf-writer.js';
