/** @bamba/gpu-node: model generation, the engine, snapshots. */
export * from './model-gen/presets.js';
export * from './model-gen/generate-model.js';
export * from './model-gen/model-plan.js';
export { SPECIAL_TOKENS, CHAT_TEMPLATE } from './model-gen/vocabulary.js';
export * from './engine/engine.js';
export { createLlamaEngine, LlamaEngine } from './engine/llama-engine.js';
export { computeModelFingerprint, type StateLayout } from './engine/fingerprint.js';
export { tokenSequenceHash, wrapSnapshot, unwrapSnapshot } from './state/snapshot-codec.js';
export { parseGpuNodeConfig, type GpuNodeConfig } from './config.js';
export { startGpuNode, type RunningGpuNode } from './gpu-node.js';
export { estimateStateBytes, transformerKvBytes, LLAMA_3_1_8B_KV_SHAPE } from './model-gen/state-size.js';
export { NODE_LLAMA_CPP_VERSION } from './engine/versions.js';
export { SnapshotStore, SNAPSHOT_CHUNK_BYTES } from './state/snapshot-store.js';
export { planTransformer, TRANSFORMER_PRESETS, type TransformerPresetName } from './model-gen/transformer-plan.js';
export { writeGguf, ggufFileBytes } from './model-gen/gguf-writer.js';
