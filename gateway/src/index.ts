/** @bamba/gateway: the Hono app and its Node entry. */
export { createApp, type GatewayApp, type GatewayPorts } from './app.js';
export { appConfigFrom, appEnvShape, parseApiKeys, type AppConfig } from './config.js';
export type { Clock, GenerationPort, RegionState, Sessions, SessionView } from './ports.js';
export type { GatewayMetrics } from './metrics.js';
export { silentLogger, type GatewayLogger, type RequestLogRecord } from './request-log.js';
export { PromMetrics } from './observability/prom-metrics.js';
export { startGateway, type RunningGateway, type GatewayRuntime } from './entry/node.js';
export { parseGatewayConfig, GATEWAY_ENV_VARIABLES, type GatewayConfig } from './entry/node-config.js';
export { EDGE_ENV_VARIABLES } from './edge/edge-config.js';
export { createEdgeApp, type EdgeConfig } from './edge/edge-app.js';
