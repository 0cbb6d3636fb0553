/** `bamba workers`: a region's GPU-less background workers (batches). Configured by environment/flags. */
import { parseWorkersConfig, startWorkers, WORKERS_ENV_VARIABLES } from '@bamba/workers';
import { applyFlags } from '../flags.js';
import { createLogger } from '../logger.js';
import { stopOnSignals } from './process-lifetime.js';

/** The variables (and so the flags) `bamba workers` accepts. */
export const WORKERS_OPTIONS: ReadonlySet<string> = new Set(WORKERS_ENV_VARIABLES);

export async function runWorkersCommand(args: string[]): Promise<number> {
  const config = parseWorkersConfig(applyFlags(args, process.env, WORKERS_OPTIONS));
  const logger = createLogger('workers', config.logLevel);
  const workers = await startWorkers(config, (message) => logger.info(message));
  return stopOnSignals(() => workers.stop(), 'workers');
}
