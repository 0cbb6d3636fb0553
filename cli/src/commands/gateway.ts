/** `bamba gateway`: the HTTP gateway of one region (Node). Configured by environment/flags. */
import { GATEWAY_ENV_VARIABLES, parseGatewayConfig, startGateway } from '@bamba/gateway';
import { applyFlags } from '../flags.js';
import { stopOnSignals } from './process-lifetime.js';

/** The variables (and so the flags) `bamba gateway` accepts. */
export const GATEWAY_OPTIONS: ReadonlySet<string> = new Set(GATEWAY_ENV_VARIABLES);

export async function runGatewayCommand(args: string[]): Promise<number> {
  const config = parseGatewayConfig(applyFlags(args, process.env, GATEWAY_OPTIONS));
  const gateway = await startGateway(config);
  return stopOnSignals(() => gateway.close(), 'gateway');
}
