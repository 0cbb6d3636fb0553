/** What each `bamba` command accepts, for the README check (tests/readme-configuration.test.ts). */
import { GATEWAY_OPTIONS } from './commands/gateway.js';
import { GPU_NODE_OPTIONS } from './commands/gpu-node.js';
import { START_OPTIONS } from './commands/start.js';
import { WORKERS_OPTIONS } from './commands/workers.js';

/** Variables (each also a flag) of the commands configured through `applyFlags`. */
export const COMMAND_OPTIONS: Readonly<Record<string, ReadonlySet<string>>> = {
  gateway: GATEWAY_OPTIONS,
  'gpu-node': GPU_NODE_OPTIONS,
  start: START_OPTIONS,
  workers: WORKERS_OPTIONS,
};

export { readModelConfig } from './commands/model.js';
export { applyFlags, flagOf } from './flags.js';
