/** POST /v1/completions (the legacy text-completion API) */
import { validateCompletionRequest } from '@bamba/shared';
import { Hono } from 'hono';
import type { AuthVariables } from '../auth.js';
import { randomSeed } from './chat-completions.js';
import { handleGeneration, type GenerationDeps } from './generation.js';
import { readJsonBody } from './request-body.js';

export function completionsRoute(deps: GenerationDeps) {
  return new Hono<{ Variables: AuthVariables }>().post('/', async (c) => {
    const request = validateCompletionRequest(await readJsonBody(c), { maxTokens: deps.config.defaultMaxTokens, randomSeed });
    return handleGeneration(c, deps, request);
  });
}
