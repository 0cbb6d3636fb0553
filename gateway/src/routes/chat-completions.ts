/** POST /v1/chat/completions */
import { validateChatCompletionRequest } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { assignRequestId, handleGeneration, type GenerationDeps } from '../generation/handle-generation.js';
import { readJsonBody } from './request-body.js';
import { validationDefaults } from '../config.js';

export function chatCompletionsRoute(deps: GenerationDeps) {
  return new Hono<{ Variables: GatewayVariables }>().post('/', async (c) => {
    const requestId = assignRequestId(c, 'chat');
    const request = validateChatCompletionRequest(await readJsonBody(c), validationDefaults(deps.config));
    return handleGeneration(c, deps, request, requestId);
  });
}
