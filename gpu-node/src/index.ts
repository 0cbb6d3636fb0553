/** @bamba/gpu-node: the engine, the intake, and serving a job end to end. */
export * from './engine/engine.js';
export { createLlamaEngine, LlamaEngine } from './engine/llama-engine.js';
export { computeModelFingerprint, type StateLayout } from './engine/fingerprint.js';
export { tokenSequenceHash, wrapSnapshot, unwrapSnapshot } from './state/snapshot-codec.js';
export { parseGpuNodeConfig, GPU_NODE_ENV_VARIABLES, type GpuNodeConfig } from './config.js';
export { startGpuNode, type RunningGpuNode } from './gpu-node.js';
export { NODE_LLAMA_CPP_VERSION } from './engine/versions.js';
