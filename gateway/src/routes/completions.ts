/** POST /v1/completions (the legacy text-completion API) */
import { validateCompletionRequest } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { assignRequestId, handleGeneration, type GenerationDeps } from '../generation/handle-generation.js';
import { validationDefaults } from '../config.js';
import { readJsonBody } from './request-body.js';

export function completionsRoute(deps: GenerationDeps) {
  return new Hono<{ Variables: GatewayVariables }>().post('/', async (c) => {
    const requestId = assignRequestId(c, 'completion');
    const request = validateCompletionRequest(await readJsonBody(c), validationDefaults(deps.config));
    return handleGeneration(c, deps, request, requestId);
  });
}
