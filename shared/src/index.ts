/** @bamba/shared: the wire contract every other package builds on. Runs on Node and in workerd. */
export * from './errors.js';
export * from './wire.js';
export * from './jobs.js';
export * from './node-status.js';
export * from './openai-requests.js';
export * from './sampling.js';
export * from './output-format.js';
export * from './snapshot-format.js';
export * from './stream-events.js';
export * from './sessions.js';
export * from './responses.js';
export * from './files.js';
export * from './answer-pieces.js';
export * from './completion-shapes.js';
export * from './batches.js';
export * from './regions.js';
export * from './edge-signature.js';
