/** @bamba/workers: the GPU-less background work of a region (batches). */
export { parseWorkersConfig, WORKERS_ENV_VARIABLES, type WorkersConfig } from './config.js';
export { startWorkers, type RunningWorkers } from './workers.js';
