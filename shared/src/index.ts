/** @bamba/shared: the contract every other package builds on. Runs on Node and in workerd. */
export * from './errors.js';
export * from './snapshot-format.js';
