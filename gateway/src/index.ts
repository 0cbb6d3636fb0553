/** @bamba/gateway: the Hono app and its Node entry. */
export { createApp, type GatewayApp, type GatewayPorts } from './app.js';
export { parseGatewayConfig, parseApiKeys, type GatewayConfig } from './config.js';
export type { Clock, Dispatcher, SubmitOptions } from './ports.js';
export { GatewayMetrics } from './metrics.js';
export { startGateway, gatewayConfigFromEnv, type RunningGateway } from './entry/node.js';
