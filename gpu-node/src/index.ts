/** @bamba/gpu-node: the engine, the intake, and serving a job end to end. */
export * from './engine/engine.js';
export { createLlamaEngine, LlamaEngine, loadLlama } from './engine/llama-engine.js';
export { computeModelFingerprint, type StateLayout } from './engine/fingerprint.js';
export { tokenSequenceHash, wrapSnapshot, unwrapSnapshot } from './state/snapshot-codec.js';
export {
  GgmlType,
  parseSequenceState,
  sectionTotals,
  serializeSequenceState,
  StateLayoutError,
  type SequenceState,
  type StateSection,
  type StateSectionKind,
} from './state/state-layout.js';
export { bf16ToF32, decodeRecurrentBf16, encodeRecurrentBf16, f32ToBf16 } from './state/recurrent-bf16.js';
export { parseGpuNodeConfig, GPU_NODE_ENV_VARIABLES, type GpuNodeConfig } from './config.js';
export { startGpuNode, type RunningGpuNode } from './gpu-node.js';
export { READER_CHECK_MS } from './intake/reader-watch.js';
export { NODE_LLAMA_CPP_VERSION } from './engine/versions.js';
