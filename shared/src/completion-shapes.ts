/**
 * Builders for OpenAI's response and chunk shapes (chat and legacy completions), used by the
 * gateway's answers and the workers' batch results alike.
 */
import type { ValidatedGenerationRequest } from './openai-requests.js';
import type { FinishReason } from './stream-events.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function usageOf(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens, prompt_tokens_details: { cached_tokens: cachedTokens } };
}

interface Identity { id: string; created: number; model: string }

export function completeResponse(request: ValidatedGenerationRequest, identity: Identity, text: string, finishReason: FinishReason, usage: Usage) {
  if (request.endpoint === 'chat') {
    return {
      ...identity,
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finishReason }],
      usage,
    };
  }
  return { ...identity, object: 'text_completion', choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }], usage };
}

/**
 * One streamed chunk. `text === null` with a finish reason is the closing chunk. With
 * `stream_options.include_usage`, every chunk before the usage chunk says `usage: null`, as OpenAI's do.
 */
export function streamChunk(request: ValidatedGenerationRequest, identity: Identity, piece: { text: string; first?: boolean } | null, finishReason: FinishReason | null) {
  const usage = request.includeUsage ? { usage: null } : {};
  if (request.endpoint === 'chat') {
    const delta = piece ? (piece.first ? { role: 'assistant', content: piece.text } : { content: piece.text }) : {};
    return { ...identity, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...usage };
  }
  return { ...identity, object: 'text_completion', choices: [{ index: 0, text: piece?.text ?? '', logprobs: null, finish_reason: finishReason }], ...usage };
}

/** The extra final chunk for `stream_options.include_usage`: no choices, only usage. */
export function usageChunk(request: ValidatedGenerationRequest, identity: Identity, usage: Usage) {
  return { ...identity, object: request.endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion', choices: [], usage };
}
