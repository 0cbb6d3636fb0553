/** POST /v1/chat/completions */
import { validateChatCompletionRequest } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { handleGeneration, type GenerationDeps } from '../generation/handle-generation.js';
import { readJsonBody } from './request-body.js';

export function chatCompletionsRoute(deps: GenerationDeps) {
  return new Hono<{ Variables: GatewayVariables }>().post('/', async (c) => {
    const request = validateChatCompletionRequest(await readJsonBody(c), { maxTokens: deps.config.defaultMaxTokens, maxMessages: deps.config.maxMessages, randomSeed });
    return handleGeneration(c, deps, request);
  });
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
