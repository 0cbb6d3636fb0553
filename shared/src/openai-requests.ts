/**
 * zod schemas for the OpenAI-compatible request bodies and their validation into requests with
 * every default resolved. Unknown fields are ignored (clients send extras); fields that would
 * change the meaning of the answer and that we do not support are refused by name.
 */
import { z } from 'zod';
import { InvalidRequestError } from './errors.js';
import { MAX_COMPLETION_LOGPROBS, MAX_TOP_LOGPROBS } from './logprobs.js';
import type { ChatMessage, GenerationInput } from './jobs.js';
import { formatNameSchema, jsonSchemaSchema, type OutputFormat } from './output-format.js';
import { assertFormatWithoutCalls, assertToolAnswers, callFieldSchema, MAX_TOOLS, resolveTooling, toolNameSchema, toolOf, type Tooling } from './tools.js';
import { logitBiasSchema, penaltySchema, type SamplingParams } from './sampling.js';

const MAX_STOP_STRINGS = 4;
const MAX_SEED = 2 ** 31 - 1;
/** Most choices (`n`) one request may ask for: each is a job on a slot of its own. */
export const MAX_CHOICES = 8;
/** Most answers (prompts × n) one request may ask for, so most prompts too: each answer is a job. */
export const MAX_ANSWERS_PER_REQUEST = 64;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool'], { error: (issue) => (issue.input === undefined ? 'role is required: system, developer, user, assistant or tool' : `unknown role '${String(issue.input).slice(0, 40)}': expected system, developer, user, assistant or tool`) }),
  // Null or absent only on an assistant message with tool_calls (checked in `chatMessagesOf`).
  content: z.union([z.string(), z.array(textPart).min(1)], { error: 'content must be a string or an array of text parts' }).nullish(),
  name: z.string().optional(),
  tool_calls: z.array(z.object({
    id: callFieldSchema('id'),
    type: z.literal('function', { error: "a tool call's type must be 'function'" }),
    function: z.object({ name: callFieldSchema('name'), arguments: z.string({ error: "a tool call's arguments must be a string (JSON text)" }) }),
  }), { error: 'tool_calls must be an array of tool calls' }).min(1, 'tool_calls must not be empty').nullish(),
  tool_call_id: callFieldSchema('tool_call_id').nullish(),
});

/** OpenAI's function tool; `parameters` is checked only where a grammar will hold the arguments to it. */
const functionToolSchema = z.object({
  type: z.literal('function', { error: "only function tools are supported: type must be 'function'" }),
  function: z.object({
    name: toolNameSchema('function.name'),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown(), { error: 'parameters must be a JSON Schema object' }).nullish(),
    strict: z.boolean().nullish(),
  }, { error: 'a function tool needs function: {name, parameters}' }),
});
const toolChoiceRequestSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) }),
], { error: "tool_choice must be 'none', 'auto', 'required' or {type: 'function', function: {name}}" });

/**
 * A token limit: a whole number ≥ 1. Not zod's int(), which refuses integers beyond 2^53 with its
 * own message: any whole number above the model's limit is `max_tokens_too_large` (fitMaxTokens).
 */
export function tokenLimitSchema(name: string) {
  return z.number({ error: `${name} must be a number` }).refine(Number.isInteger, `${name} must be a whole number`).refine((value) => value >= 1, `${name} must be at least 1`);
}

/** Our sampling extensions (vLLM's and llama.cpp's), on every generation endpoint. */
export const extensionSamplingFields = {
  top_k: z.number().int().min(0).nullish(),
  // Tokens less likely than min_p × the most likely one are dropped.
  min_p: z.number({ error: 'min_p must be a number' }).min(0, 'min_p must be at least 0').max(1, 'min_p must be at most 1').nullish(),
};

const samplingFields = {
  model: z.string({ error: (issue) => (issue.input === undefined ? 'model is required' : 'model must be a string') }).min(1, 'model must not be empty'),
  max_tokens: tokenLimitSchema('max_tokens').nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  ...extensionSamplingFields,
  seed: z.number().int().min(0).max(MAX_SEED).nullish(),
  // One string is a list of one: so a list too long says so, not zod's "Invalid input" of a union.
  stop: z.preprocess((value) => (typeof value === 'string' ? [value] : value), z.array(z.string({ error: 'stop strings must be strings' }).min(1, 'stop strings must not be empty'), { error: 'stop must be a string or an array of strings' })
    .max(MAX_STOP_STRINGS, `stop holds at most ${MAX_STOP_STRINGS} strings`)).nullish(),
  n: z.number({ error: 'n must be a number' }).int('n must be a whole number').min(1, 'n must be at least 1').max(MAX_CHOICES, `n must be at most ${MAX_CHOICES} (each choice is generated on a slot of its own)`).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  presence_penalty: penaltySchema('presence_penalty').nullish(),
  frequency_penalty: penaltySchema('frequency_penalty').nullish(),
  logit_bias: logitBiasSchema.nullish(),
};

export const chatCompletionRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(messageSchema, { error: 'messages must be an array' }).min(1, 'messages must hold at least one message'),
  max_completion_tokens: tokenLimitSchema('max_completion_tokens').nullish(),
  /** Extension: continue a server-side session; `messages` then holds only the new turn. */
  session_id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'session_id has unexpected characters').nullish(),
  tools: z.array(functionToolSchema, { error: 'tools must be an array of function tools' }).max(MAX_TOOLS, `tools holds at most ${MAX_TOOLS} tools`).nullish(),
  tool_choice: toolChoiceRequestSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  // The deprecated forms of tools: refused by name (send tools and tool_choice).
  functions: z.unknown().optional(),
  function_call: z.unknown().optional(),
  response_format: z.discriminatedUnion('type', [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.object({
        name: formatNameSchema('json_schema.name'),
        description: z.string().nullish(),
        // Without a schema: any JSON object, as json_object.
        schema: jsonSchemaSchema.nullish(),
        strict: z.boolean().nullish(),
      }, { error: 'response_format json_schema needs json_schema: {name, schema}' }),
    }),
  ], { error: (issue) => (issue.code === 'invalid_union' ? `response_format type must be text, json_object or json_schema` : undefined) }).nullish(),
  modalities: z.array(z.string(), { error: 'modalities must be an array of strings' }).nullish(),
  logprobs: z.boolean({ error: 'logprobs must be true or false' }).nullish(),
  top_logprobs: z.number({ error: 'top_logprobs must be a number' }).int('top_logprobs must be a whole number').min(0, 'top_logprobs must be at least 0').max(MAX_TOP_LOGPROBS, `top_logprobs must be at most ${MAX_TOP_LOGPROBS}`).nullish(),
  // Accepted only when absent or null (checked below): answering without them would be a wrong answer.
  audio: z.unknown().optional(),
  prediction: z.unknown().optional(),
  web_search_options: z.unknown().optional(),
  reasoning_effort: z.unknown().optional(),
});

/** Chat features this server cannot provide, by field: refused by name rather than answered without them. */
const UNSUPPORTED_CHAT_FEATURES = {
  audio: 'audio output is not supported',
  prediction: 'predicted outputs are not supported',
  web_search_options: 'web search is not supported',
  reasoning_effort: 'reasoning_effort is not supported: the models here do not reason',
} as const;

export const completionRequestSchema = z.object({
  ...samplingFields,
  // (How many strings an array holds is checked after: the union's one message would hide why.)
  prompt: z.union([z.string(), z.array(z.string())], { error: 'prompt must be a string or an array of strings (token ids are not accepted)' }),
  echo: z.boolean().nullish(),
  /** How many of the most likely tokens to show at each place (0: the chosen token's only). */
  // `false` reads as absent (the field was a boolean on chat, and clients send it so).
  logprobs: z.preprocess((value) => (value === false ? null : value), z.number({ error: 'logprobs must be a number (the legacy completions take how many alternatives to show)' }).int('logprobs must be a whole number').min(0, 'logprobs must be at least 0').max(MAX_COMPLETION_LOGPROBS, `logprobs must be at most ${MAX_COMPLETION_LOGPROBS}`).nullish()),
  suffix: z.string().nullish(),
  best_of: z.number().int().nullish(),
  /** Our extension, for chat only: read here so that it is refused rather than ignored. */
  session_id: z.unknown().optional(),
});

/** A generation request after validation: nothing left to default. */
export interface ValidatedGenerationRequest {
  model: string;
  input: GenerationInput;
  params: SamplingParams;
  stream: boolean;
  /** `stream_options.include_usage`: a final chunk carries usage. */
  includeUsage: boolean;
  /** Whether the client set max_tokens (else the default applies, capped by the model's context). */
  maxTokensRequested: boolean;
  /** Which endpoint asked (shapes the response). */
  endpoint: 'chat' | 'completion';
  /** Server-side session this turn continues, or null for a stateless request. */
  sessionId: string | null;
  /**
   * How many answers: `n`, times the prompts of a legacy completions request. Each choice is its
   * own job (`choiceRequest`).
   */
  choices: number;
  /**
   * Legacy completions with several prompts: `n` choices for each, in order (choice i answers
   * prompt ⌊i / n⌋); `input` is the first. Absent for one prompt.
   */
  prompts?: readonly string[];
  /** Legacy completions' `echo`: each choice's text starts with its prompt. */
  echo?: true;
}

/** How many choices answer each prompt (`n`). */
export const choicesPerPrompt = (request: ValidatedGenerationRequest): number => (request.prompts ? request.choices / request.prompts.length : request.choices);

/** Which of the request's prompts choice `index` answers (0 with one prompt, and for a chat). */
export const promptIndexOf = (request: ValidatedGenerationRequest, index: number): number => Math.floor(index / choicesPerPrompt(request));

/** The prompt choice `index` answers (legacy completions), or null for a chat. */
export function promptOfChoice(request: ValidatedGenerationRequest, index: number): string | null {
  if (request.input.kind !== 'completion') return null;
  return request.prompts ? request.prompts[promptIndexOf(request, index)]! : request.input.prompt;
}

/**
 * Choice `index` of a request as a generation of its own: its prompt, and its sampling (seed + its
 * place among its prompt's choices, so that it is exactly the answer of that prompt and seed with
 * `n: 1`). The first choice is the request itself: its admission counts every job of the request.
 */
export function choiceRequest(request: ValidatedGenerationRequest, index: number): ValidatedGenerationRequest {
  if (index === 0) return request;
  const { prompts: _all, ...one } = request;
  const input = request.prompts ? { kind: 'completion' as const, prompt: promptOfChoice(request, index)! } : request.input;
  return { ...one, input, params: choiceParams(request.params, index % choicesPerPrompt(request)), choices: 1 };
}

/** Choice `index`'s sampling: the request's, with seed + index (so choices differ, and each repeats with the seed). */
export function choiceParams(params: SamplingParams, index: number): SamplingParams {
  return index === 0 ? params : { ...params, seed: (params.seed + index) % (MAX_SEED + 1) };
}

/** A seed for a request that sets none (what `ValidationDefaults.randomSeed` is everywhere but in tests). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

export interface ValidationDefaults {
  /** Used when the request sets no max_tokens. */
  maxTokens: number;
  /** Most messages one chat request may carry (checked before anything else looks at them). */
  maxMessages: number;
  /** Source of seeds for requests without one (sampling stays reproducible per request). */
  randomSeed: () => number;
}

/** Turn zod's first issue into an OpenAI-style error naming the field (`messages[0].role`). */
export function toInvalidRequest(error: z.ZodError): InvalidRequestError {
  const issue = error.issues[0]!;
  const param = issue.path.reduce<string>((path, part) => (typeof part === 'number' ? `${path}[${part}]` : path ? `${path}.${String(part)}` : String(part)), '');
  // A message that does not name its field (zod's own: "Too big: expected number to be <=2") gets it in front.
  const field = issue.path.length > 0 ? String(issue.path[0]) : '';
  const message = param && !issue.message.includes(field) ? `${param}: ${issue.message}` : issue.message;
  // A field left out fails as a wrong type, or as none of an enum's values: either way it is missing.
  const missing = (issue.code === 'invalid_type' || issue.code === 'invalid_value') && 'input' in issue && issue.input === undefined;
  return new InvalidRequestError(message, { param: param || null, code: missing ? 'missing_required_parameter' : 'invalid_value' });
}

/** A UTF-16 surrogate without its pair: JSON's `\\ud83d` escape can write one, no Unicode text holds one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Whether a string is Unicode text (no unpaired surrogate). */
export const isUnicodeText = (text: string): boolean => !LONE_SURROGATE.test(text);

/**
 * Where a parsed body holds a string (or key) that is not Unicode text, as a param path; null when
 * none does. Walked without recursion: a body nests as deep as its JSON did.
 */
function malformedTextAt(body: unknown): string | null {
  const pending: Array<[unknown, string]> = [[body, '']];
  while (pending.length > 0) {
    const [value, path] = pending.pop()!;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) return path;
    } else if (Array.isArray(value)) {
      value.forEach((child, index) => pending.push([child, `${path}[${index}]`]));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, child] of Object.entries(value)) {
        const at = path ? `${path}.${key}` : key;
        if (LONE_SURROGATE.test(key)) return at;
        pending.push([child, at]);
      }
    }
  }
  return null;
}

/**
 * Parse a request body (a JSON object) with `schema`; the first problem becomes a 400 naming the
 * field. Text that is not Unicode (an unpaired surrogate) is refused first: a grammar built from
 * it would leave the model nothing to write, and Redis's Lua cannot read it back.
 */
export function parseRequestBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequestError('request body must be a JSON object', { code: 'invalid_body' });
  }
  const malformed = malformedTextAt(body);
  if (malformed !== null) throw new InvalidRequestError(`${malformed} holds an unpaired UTF-16 surrogate (a \\ud800–\\udfff escape without its pair): text must be valid Unicode`, { param: malformed, code: 'invalid_value' });
  // reportInput: an issue keeps the value it saw, so a wrong type is not called a missing field.
  const result = schema.safeParse(body, { reportInput: true });
  if (!result.success) throw toInvalidRequest(result.error);
  return result.data;
}

export type SamplingInput = { [K in keyof typeof samplingFields]?: z.infer<(typeof samplingFields)[K]> };

/** Sampling parameters with every default resolved (shared by every generation endpoint). */
export function resolveSampling(body: SamplingInput, maxTokens: number | null | undefined, defaults: ValidationDefaults, logprobs?: number): Omit<ValidatedGenerationRequest, 'input' | 'endpoint' | 'sessionId'> {
  if (body.stream_options && !body.stream) throw new InvalidRequestError('stream_options is only allowed when stream is true', { param: 'stream_options', code: 'invalid_value' });
  const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  return {
    model: body.model!,
    params: {
      maxTokens: maxTokens ?? defaults.maxTokens,
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      topK: body.top_k ?? 0,
      seed: body.seed ?? defaults.randomSeed(),
      stop,
      // Only what changes sampling travels with the job.
      ...(body.min_p ? { minP: body.min_p } : {}),
      ...(body.presence_penalty ? { presencePenalty: body.presence_penalty } : {}),
      ...(body.frequency_penalty ? { frequencyPenalty: body.frequency_penalty } : {}),
      ...(body.logit_bias && Object.keys(body.logit_bias).length > 0 ? { logitBias: body.logit_bias } : {}),
      ...(logprobs !== undefined ? { logprobs } : {}),
    },
    maxTokensRequested: maxTokens !== null && maxTokens !== undefined,
    stream: body.stream ?? false,
    includeUsage: body.stream_options?.include_usage ?? false,
    choices: body.n ?? 1,
  };
}

export function validateChatCompletionRequest(body: unknown, defaults: ValidationDefaults): ValidatedGenerationRequest {
  // The count first: a request of thousands of tiny messages is refused before any work per message.
  const messageCount = typeof body === 'object' && body !== null && Array.isArray((body as { messages?: unknown }).messages) ? (body as { messages: unknown[] }).messages.length : 0;
  if (messageCount > defaults.maxMessages) {
    throw new InvalidRequestError(`messages holds ${messageCount} messages; at most ${defaults.maxMessages} are accepted per request (a session keeps longer conversations on the server)`, { param: 'messages', code: 'too_many_messages' });
  }
  const request = parseRequestBody(chatCompletionRequestSchema, body);
  for (const field of ['functions', 'function_call'] as const) {
    if (request[field] != null) throw new InvalidRequestError(`${field} is deprecated and not supported; send tools and tool_choice`, { param: field, code: 'unsupported_parameter' });
  }
  for (const [field, refusal] of Object.entries(UNSUPPORTED_CHAT_FEATURES)) {
    if (request[field as keyof typeof UNSUPPORTED_CHAT_FEATURES] != null) throw new InvalidRequestError(refusal, { param: field, code: 'unsupported_parameter' });
  }
  const otherModality = request.modalities?.find((modality) => modality !== 'text');
  if (otherModality !== undefined) throw new InvalidRequestError(`modality '${otherModality.slice(0, 40)}' is not supported: only text`, { param: 'modalities', code: 'unsupported_value' });
  if (request.top_logprobs != null && request.logprobs !== true) throw new InvalidRequestError('top_logprobs needs logprobs: true', { param: 'top_logprobs', code: 'invalid_value' });
  if (request.max_tokens != null && request.max_completion_tokens != null && request.max_tokens !== request.max_completion_tokens) {
    throw new InvalidRequestError('max_tokens and max_completion_tokens disagree; send one', { param: 'max_tokens', code: 'invalid_value' });
  }
  // A session turn's tool messages may answer calls of its transcript: the gpu-node, which reads it, checks those.
  const messages = chatMessagesOf(request.messages, !request.session_id);
  const tooling = toolingOf(request);
  // A session turn commits one answer to its conversation: which of n would it be?
  if (request.session_id && (request.n ?? 1) > 1) throw new InvalidRequestError('a session turn has one answer: n must be 1 with session_id', { param: 'n', code: 'unsupported_value' });
  if (request.session_id && messages.some((message) => message.role === 'system')) {
    throw new InvalidRequestError('a session turn cannot add a system message; set it when creating the session', { param: 'messages', code: 'invalid_value' });
  }
  const sampling = resolveSampling(request, request.max_completion_tokens ?? request.max_tokens, defaults, request.logprobs ? request.top_logprobs ?? 0 : undefined);
  const format = chatOutputFormat(request.response_format);
  assertFormatWithoutCalls(format, tooling, 'response_format');
  return { ...sampling, ...(format ? { params: { ...sampling.params, format } } : {}), input: { kind: 'chat', messages, ...tooling }, endpoint: 'chat', sessionId: request.session_id ?? null };
}

type ChatRequest = z.infer<typeof chatCompletionRequestSchema>;

/**
 * The request's messages as the job carries them. Content is absent only on an assistant message
 * that calls tools; a `tool` message answers a call an earlier message of the request made.
 */
function chatMessagesOf(messages: ChatRequest['messages'], checkAnswers: boolean): ChatMessage[] {
  const converted = messages.map((message, index): ChatMessage => {
    const at = `messages[${index}]`;
    if (message.tool_calls && message.role !== 'assistant') throw new InvalidRequestError(`${at}.tool_calls: only assistant messages make tool calls`, { param: `${at}.tool_calls`, code: 'invalid_value' });
    if (message.content == null && !message.tool_calls) throw new InvalidRequestError(`${at}.content is required (it may be left out only on an assistant message with tool_calls)`, { param: `${at}.content`, code: 'missing_required_parameter' });
    const content = message.content == null ? '' : typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join('');
    if (message.role === 'tool') {
      if (!message.tool_call_id) throw new InvalidRequestError(`${at}.tool_call_id is required on a tool message`, { param: `${at}.tool_call_id`, code: 'missing_required_parameter' });
      return { role: 'tool', content, toolCallId: message.tool_call_id };
    }
    const toolCalls = message.tool_calls?.map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments }));
    return { role: message.role === 'developer' ? 'system' : message.role, content, ...(toolCalls ? { toolCalls } : {}) };
  });
  if (checkAnswers) assertToolAnswers(converted, [], chatToolParam);
  return converted;
}

/** The message a chat `param` names (`messages[3].tool_calls` → 3, `.tool_calls`), or null. */
export function messageParamOf(param: string | null): { index: number; rest: string } | null {
  const at = param === null ? null : /^messages\[(\d+)\]/.exec(param);
  return at ? { index: Number(at[1]), rest: param!.slice(at[0].length) } : null;
}

/** Where a chat request names a tool message's call, or the id of a message's call. */
export const chatToolParam = (index: number, field: 'answer' | 'call', call = 0) => `messages[${index}].${field === 'answer' ? 'tool_call_id' : `tool_calls[${call}].id`}`;

/** The tools and how they may be used, or undefined when none are offered. */
function toolingOf(request: ChatRequest): Tooling | undefined {
  const asked = request.tool_choice == null ? null : typeof request.tool_choice === 'string' ? request.tool_choice : { name: request.tool_choice.function.name };
  return resolveTooling((request.tools ?? []).map((tool) => toolOf(tool.function)), asked, request.parallel_tool_calls, (index, field) => `tools[${index}].function.${field}`);
}

/** What a chat's `response_format` holds the answer to; undefined for plain text. */
function chatOutputFormat(format: z.infer<typeof chatCompletionRequestSchema>['response_format']): OutputFormat | undefined {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object' || !format.json_schema.schema) return { type: 'json_object' };
  return { type: 'json_schema', schema: format.json_schema.schema };
}

export function validateCompletionRequest(body: unknown, defaults: ValidationDefaults): ValidatedGenerationRequest {
  const request = parseRequestBody(completionRequestSchema, body);
  // The prompt's own log probabilities (what echo with logprobs shows first) are not computed.
  if (request.echo && request.logprobs != null) throw new InvalidRequestError('echo with logprobs is not supported: the prompt\'s log probabilities are not computed (echo alone is)', { param: 'echo', code: 'unsupported_parameter' });
  if (request.suffix) throw new InvalidRequestError('suffix is not supported', { param: 'suffix', code: 'unsupported_parameter' });
  if (request.best_of !== undefined && request.best_of !== null && request.best_of !== 1) throw new InvalidRequestError('only best_of = 1 is supported', { param: 'best_of', code: 'unsupported_value' });
  // Taken silently it would look like a session turn that never was.
  if (request.session_id !== undefined) throw new InvalidRequestError('session_id works with /v1/chat/completions only (a session is a chat)', { param: 'session_id', code: 'unsupported_parameter' });
  const prompts = typeof request.prompt === 'string' ? [request.prompt] : request.prompt;
  if (prompts.length === 0) throw new InvalidRequestError('prompt arrays must hold at least one string', { param: 'prompt', code: 'invalid_value' });
  if (prompts.length > MAX_ANSWERS_PER_REQUEST) throw new InvalidRequestError(`prompt arrays may hold at most ${MAX_ANSWERS_PER_REQUEST} strings (each is answered by a job of its own), got ${prompts.length}`, { param: 'prompt', code: 'invalid_value' });
  const empty = prompts.findIndex((prompt) => prompt.length === 0);
  if (empty !== -1) {
    const param = typeof request.prompt === 'string' ? 'prompt' : `prompt[${empty}]`;
    throw new InvalidRequestError(`${param} must not be empty`, { param, code: 'invalid_value' });
  }
  const sampling = resolveSampling(request, request.max_tokens, defaults, request.logprobs ?? undefined);
  const answers = prompts.length * sampling.choices;
  if (answers > MAX_ANSWERS_PER_REQUEST) throw new InvalidRequestError(`${prompts.length} prompts × n = ${sampling.choices} asks for ${answers} answers; one request may ask for at most ${MAX_ANSWERS_PER_REQUEST} (each is a job of its own)`, { param: 'n', code: 'invalid_value' });
  return {
    ...sampling,
    choices: answers,
    ...(prompts.length > 1 ? { prompts } : {}),
    input: { kind: 'completion', prompt: prompts[0]! },
    endpoint: 'completion',
    sessionId: null,
    ...(request.echo ? { echo: true as const } : {}),
  };
}

/**
 * `max_tokens` against the model's context: an explicit value above what fits is a 400; the
 * default is capped to fit. An explicit value is marked so that the gpu-node, which counts the
 * prompt's tokens, refuses it when prompt + max_tokens overflow the context. Shared by the
 * gateway's admission and the workers' batch items, so a batch item asks for exactly what the
 * same request sent interactively would.
 */
export function fitMaxTokens(request: ValidatedGenerationRequest, model: { id: string; contextSize: number }): ValidatedGenerationRequest {
  const maxTokensLimit = model.contextSize - 1;
  if (request.maxTokensRequested && request.params.maxTokens > maxTokensLimit) {
    throw new InvalidRequestError(`max_tokens is ${request.params.maxTokens}, model '${model.id}' allows at most ${maxTokensLimit}`, { param: 'max_tokens', code: 'max_tokens_too_large' });
  }
  const maxTokens = Math.min(request.params.maxTokens, maxTokensLimit);
  return { ...request, params: { ...request.params, maxTokens, ...(request.maxTokensRequested ? { maxTokensExplicit: true as const } : {}) } };
}

/**
 * Request defaults, as environment variables: the gateway applies them to interactive requests
 * and the workers to batch items, so both read them from one definition.
 */
export const requestDefaultsEnvShape = {
  BAMBA_DEFAULT_MAX_TOKENS: z.coerce.number().int().positive().default(512),
  BAMBA_MAX_MESSAGES: z.coerce.number().int().positive().default(500),
  /** An interactive request's body, and a batch file's line, hold at most this many bytes. */
  BAMBA_MAX_BODY_BYTES: z.coerce.number().int().positive().default(1024 * 1024),
};
