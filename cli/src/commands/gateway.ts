/** `bamba gateway`: the HTTP gateway of one region (Node). Configured by environment/flags. */
import { gatewayConfigFromEnv, startGateway } from '@bamba/gateway';
import { applyFlags } from '../flags.js';
import { stopOnSignals } from './process-lifetime.js';

const OPTIONS = new Set([
  'PORT', 'BAMBA_HOST', 'REDIS_URL', 'BAMBA_REDIS_PREFIX', 'BAMBA_REGION', 'BAMBA_API_KEYS', 'BAMBA_API_KEYS_FILE',
  'BAMBA_MAX_BODY_BYTES', 'BAMBA_QUEUE_MAX_WAITING', 'BAMBA_REQUEST_DEADLINE_MS', 'BAMBA_DEFAULT_MAX_TOKENS', 'BAMBA_JOB_ATTEMPTS',
]);

export async function runGatewayCommand(args: string[]): Promise<number> {
  const config = gatewayConfigFromEnv(applyFlags(args, process.env, OPTIONS));
  const gateway = await startGateway(config);
  return stopOnSignals(() => gateway.close(), 'gateway');
}
