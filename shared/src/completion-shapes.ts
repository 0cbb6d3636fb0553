/**
 * Builders for OpenAI's response and chunk shapes (chat and legacy completions), used by the
 * gateway's answers and the workers' batch results alike.
 */
import { chatLogprobs, completionLogprobs, type TokenLogprob } from './logprobs.js';
import { promptOfChoice, type ValidatedGenerationRequest } from './openai-requests.js';
import type { FinishReason } from './stream-events.js';
import type { ToolCall } from './tools.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function usageOf(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens, prompt_tokens_details: { cached_tokens: cachedTokens } };
}

interface Identity { id: string; created: number; model: string; system_fingerprint?: string }

/**
 * OpenAI's `system_fingerprint` ("the backend configuration the model runs with", to read with
 * `seed`): the answering node's model fingerprint, which changes with the weights, the engine's
 * version and the settings that change its state layout. Nothing when the node did not say.
 */
export function systemFingerprintOf(modelFingerprint: string | undefined): Pick<Identity, 'system_fingerprint'> {
  return modelFingerprint ? { system_fingerprint: `fp_${modelFingerprint.slice(0, 10)}` } : {};
}

/**
 * An answer's finish reason as OpenAI says it: `tool_calls` when it ended with calls (`length`
 * when its limit cut it even so), except that a call of the tool `tool_choice` named ends with
 * `stop`, as OpenAI's does.
 */
export function finishReasonOf(request: ValidatedGenerationRequest, finishReason: FinishReason, toolCalls: readonly ToolCall[] | undefined): FinishReason | 'tool_calls' {
  const named = request.input.kind === 'chat' && typeof request.input.toolChoice === 'object';
  return toolCalls && finishReason === 'stop' && !named ? 'tool_calls' : finishReason;
}

/** Tool calls as OpenAI's message and delta show them (a delta's with their `index`). */
export function wireToolCalls(toolCalls: readonly ToolCall[], withIndex: boolean) {
  return toolCalls.map((call, index) => ({ ...(withIndex ? { index } : {}), id: call.id, type: 'function' as const, function: { name: call.name, arguments: call.arguments } }));
}

/**
 * A choice's `logprobs`: null unless the request asked for them; `offset` (legacy completions):
 * where the first entry's text begins in the answer.
 */
function logprobsOf(request: ValidatedGenerationRequest, entries: readonly TokenLogprob[] | undefined, offset = 0) {
  if (request.params.logprobs === undefined) return null;
  return request.endpoint === 'chat' ? chatLogprobs(entries ?? []) : completionLogprobs(entries ?? [], offset);
}

/** The text a legacy completion's choice begins with: its prompt, when the request asked for `echo`. */
const echoedPrompt = (request: ValidatedGenerationRequest, index: number): string => (request.echo ? promptOfChoice(request, index) ?? '' : '');

/** One choice's whole answer, as a non-streamed response shows it. */
export interface ChoiceAnswer {
  text: string;
  finishReason: FinishReason;
  toolCalls?: readonly ToolCall[] | undefined;
  /** The answer's entries, when the request asked for them. */
  logprobs?: readonly TokenLogprob[] | undefined;
}

/** A non-streamed response: one choice per answer, in order (`index` is its place). */
export function completeResponse(request: ValidatedGenerationRequest, identity: Identity, answers: readonly ChoiceAnswer[], usage: Usage) {
  if (request.endpoint === 'chat') {
    const choices = answers.map(({ text, finishReason, toolCalls, logprobs }, index) => {
      // With tool calls, a message that wrote nothing before them has null content, as OpenAI's.
      const message = toolCalls
        ? { role: 'assistant', content: text === '' ? null : text, refusal: null, tool_calls: wireToolCalls(toolCalls, false) }
        : { role: 'assistant', content: text, refusal: null };
      return { index, message, logprobs: logprobsOf(request, logprobs), finish_reason: finishReasonOf(request, finishReason, toolCalls) };
    });
    return { ...identity, object: 'chat.completion', choices, usage };
  }
  const choices = answers.map(({ text, finishReason, logprobs }, index) => ({ index, text: echoedPrompt(request, index) + text, logprobs: logprobsOf(request, logprobs), finish_reason: finishReason }));
  return { ...identity, object: 'text_completion', choices, usage };
}

/**
 * The usage of a request's choices (each its own job, each counting its prompt), `perPrompt`
 * choices per prompt, in order: each prompt once, as OpenAI counts it; every choice's completion
 * tokens; cached, per prompt what every one of its choices found cached.
 */
export function choicesUsage(ends: ReadonlyArray<{ promptTokens: number; completionTokens: number; cachedTokens: number }>, perPrompt = ends.length): Usage {
  let promptTokens = 0;
  let cachedTokens = 0;
  let completionTokens = 0;
  for (let first = 0; first < ends.length; first += perPrompt) {
    const group = ends.slice(first, first + perPrompt);
    promptTokens += group[0]!.promptTokens;
    cachedTokens += Math.min(...group.map((end) => end.cachedTokens));
    for (const end of group) completionTokens += end.completionTokens;
  }
  return usageOf(promptTokens, completionTokens, cachedTokens);
}

/**
 * One streamed chunk. `text === null` with a finish reason is the closing chunk. With
 * `stream_options.include_usage`, every chunk before the usage chunk says `usage: null`, as OpenAI's do.
 * `logprobs`: the entries of the chunk's tokens, when the request asked for them (`logprobOffset`
 * on legacy completions: where the first one's text begins in the answer). `index`: the choice's.
 * `first`: the choice's first chunk (chat's names the role; a legacy one with `echo` holds the prompt).
 */
export function streamChunk(request: ValidatedGenerationRequest, identity: Identity, piece: { text: string; first?: boolean; logprobs?: readonly TokenLogprob[]; logprobOffset?: number } | null, finishReason: FinishReason | 'tool_calls' | null, index = 0) {
  const usage = request.includeUsage ? { usage: null } : {};
  const logprobs = piece ? logprobsOf(request, piece.logprobs, piece.logprobOffset) : null;
  if (request.endpoint === 'chat') {
    const delta = piece ? (piece.first ? { role: 'assistant', content: piece.text } : { content: piece.text }) : {};
    return { ...identity, object: 'chat.completion.chunk', choices: [{ index, delta, logprobs, finish_reason: finishReason }], ...usage };
  }
  const text = piece ? (piece.first ? echoedPrompt(request, index) : '') + piece.text : '';
  return { ...identity, object: 'text_completion', choices: [{ index, text, logprobs, finish_reason: finishReason }], ...usage };
}

/** The extra final chunk for `stream_options.include_usage`: no choices, only usage. */
export function usageChunk(request: ValidatedGenerationRequest, identity: Identity, usage: Usage) {
  return { ...identity, object: request.endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion', choices: [], usage };
}

/**
 * A chat chunk with all of an answer's tool calls, each whole with its index (name and all of its
 * arguments in one delta: the client's accumulation of argument fragments reads it the same).
 * `first`: no chunk of its choice (`index`) went out before it, so it names the role.
 */
export function toolCallsChunk(request: ValidatedGenerationRequest, identity: Identity, toolCalls: readonly ToolCall[], first: boolean, index = 0) {
  const usage = request.includeUsage ? { usage: null } : {};
  const delta = { ...(first ? { role: 'assistant', content: null } : {}), tool_calls: wireToolCalls(toolCalls, true) };
  return { ...identity, object: 'chat.completion.chunk', choices: [{ index, delta, logprobs: null, finish_reason: null }], ...usage };
}
