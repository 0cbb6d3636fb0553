/**
 * The Responses and Conversations APIs' request bodies: zod schemas and their validation into
 * requests with every default resolved. What we do not support (tools other than functions,
 * reasoning, images, files) is refused naming the field, never silently ignored.
 */
import { z } from 'zod';
import type { AnswerPiece } from './answer-pieces.js';
import { BambaError, InvalidRequestError, withParam } from './errors.js';
import type { ChatMessage } from './jobs.js';
import { MAX_TOP_LOGPROBS, type TokenLogprob } from './logprobs.js';
import { extensionSamplingFields, messageParamOf, parseRequestBody, resolveSampling, tokenLimitSchema, toInvalidRequest, type ValidatedGenerationRequest, type ValidationDefaults } from './openai-requests.js';
import type { SamplingParams } from './sampling.js';
import { formatNameSchema, jsonSchemaSchema, type OutputFormat } from './output-format.js';
import { metadataSchema } from './sessions.js';
import { assertFormatWithoutCalls, assertToolAnswers, callFieldSchema, MAX_TOOLS, resolveTooling, toolNameSchema, toolOf, type Tool, type ToolCall, type ToolChoice, type Tooling } from './tools.js';

/** Items one `POST /v1/conversations/{id}/items` (or a conversation's creation) may add: OpenAI's limit. */
export const MAX_ITEMS_PER_CALL = 20;

const textPart = z.object({
  type: z.string(),
  text: z.string().optional(),
}).passthrough();

const messageItem = z.object({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer'], { error: (issue) => (issue.input === undefined ? 'role is required: user, assistant, system or developer' : `unknown role '${String(issue.input).slice(0, 40)}': expected user, assistant, system or developer`) }),
  content: z.union([z.string(), z.array(textPart).min(1, 'content must hold at least one part')], { error: 'content must be a string or an array of input_text parts' }),
}).passthrough();

/** Any input item: the type is checked by hand so that unsupported kinds get a clear error. */
const inputItem = z.object({ type: z.string().optional() }).passthrough();

const responseRequestSchema = z.object({
  model: z.string({ error: (issue) => (issue.input === undefined ? 'model is required' : 'model must be a string') }).min(1, 'model must not be empty'),
  // Optional, as in OpenAI's API: instructions or a previous response can be all there is (an
  // empty list too; whether the request then has anything to answer is checked below).
  input: z.union([z.string(), z.array(inputItem)], { error: 'input must be a string or an array of message items' }).optional(),
  instructions: z.string().nullish(),
  previous_response_id: z.string().min(1).max(128).nullish(),
  conversation: z.union([z.string().min(1).max(128), z.object({ id: z.string().min(1).max(128) })]).nullish(),
  store: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  background: z.boolean().nullish(),
  max_output_tokens: tokenLimitSchema('max_output_tokens').nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  ...extensionSamplingFields,
  metadata: metadataSchema.nullish(),
  tools: z.array(z.object({
    type: z.literal('function', { error: "only function tools are supported: type must be 'function'" }),
    name: toolNameSchema('name'),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown(), { error: 'parameters must be a JSON Schema object' }).nullish(),
    strict: z.boolean().nullish(),
  }), { error: 'tools must be an array of function tools' }).max(MAX_TOOLS, `tools holds at most ${MAX_TOOLS} tools`).nullish(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), name: z.string() })], { error: "tool_choice must be 'none', 'auto', 'required' or {type: 'function', name}" }).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  reasoning: z.unknown().optional(),
  text: z.object({ format: z.discriminatedUnion('type', [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      name: formatNameSchema('name'),
      schema: jsonSchemaSchema,
      description: z.string().nullish(),
      strict: z.boolean().nullish(),
    }),
  ], { error: (issue) => (issue.code === 'invalid_union' ? 'text.format type must be text, json_object or json_schema' : undefined) }).nullish() }).passthrough().nullish(),
  include: z.array(z.string({ error: 'include must be an array of strings' }), { error: 'include must be an array of strings' }).nullish(),
  prompt: z.unknown().optional(),
  top_logprobs: z.number({ error: 'top_logprobs must be a number' }).int('top_logprobs must be a whole number').min(0, 'top_logprobs must be at least 0').max(MAX_TOP_LOGPROBS, `top_logprobs must be at most ${MAX_TOP_LOGPROBS}`).nullish(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  user: z.string({ error: 'user must be a string' }).nullish(),
});

/** A `POST /v1/responses` after validation. */
export interface ValidatedResponseRequest {
  model: string;
  /** The response's own input items, as chat messages (`developer` is `system`). */
  input: ChatMessage[];
  instructions: string | null;
  previousResponseId: string | null;
  conversationId: string | null;
  store: boolean;
  stream: boolean;
  background: boolean;
  /** `params.logprobs` is set when `include` asks for the answer's log probabilities. */
  params: SamplingParams;
  maxTokensRequested: boolean;
  /** `top_logprobs` as asked (the response object shows it). */
  topLogprobs: number | null;
  metadata: Record<string, string>;
  /** `text.format` as the response object shows it. */
  textFormat: ResponseTextFormat;
  /** The function tools offered and how they may be used; undefined when none are. */
  tooling: Tooling | undefined;
  /** How the tools could be used and whether several calls could be made, as the response shows them. */
  toolChoice: ToolChoice;
  parallelToolCalls: boolean;
  /** For each of `input`, the index of the request's input item it starts at, and of the items of its calls (for errors). */
  inputItemIndex: number[];
  inputCallItemIndex: number[][];
}

/**
 * A response's `text.format` as its record keeps it and its object shows it: plain text, any JSON
 * object, or a value of a named schema (checked when the request came; read back as it was stored).
 */
export const responseTextFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({ type: z.literal('json_schema'), name: z.string(), schema: z.record(z.string(), z.unknown()), description: z.string().optional(), strict: z.boolean().optional() }),
]);
export type ResponseTextFormat = z.infer<typeof responseTextFormatSchema>;

/** What a `text.format` holds the answer to; undefined for plain text. */
export function outputFormatOf(format: ResponseTextFormat): OutputFormat | undefined {
  if (format.type === 'text') return undefined;
  return format.type === 'json_object' ? { type: 'json_object' } : { type: 'json_schema', schema: format.schema };
}

const unsupported = (param: string, what: string, plural = what.endsWith('s')) => new InvalidRequestError(`${what} ${plural ? 'are' : 'is'} not supported`, { param, code: 'unsupported_parameter' });

/** The one `include` served: the answer's log probabilities, on its output text. */
export const INCLUDE_LOGPROBS = 'message.output_text.logprobs';

/**
 * How many alternatives per token the answer's log probabilities show, or undefined when `include`
 * does not ask for them. Whatever else `include` asks for is refused by name (we have none of it).
 */
function logprobsAsked(include: readonly string[] | null | undefined, topLogprobs: number | null | undefined): number | undefined {
  const other = include?.findIndex((value) => value !== INCLUDE_LOGPROBS) ?? -1;
  if (other !== -1) throw unsupported(`include[${other}]`, `include '${include![other]!.slice(0, 60)}' (only '${INCLUDE_LOGPROBS}' is)`);
  // `top_logprobs` alone shows nothing (as OpenAI's: the entries come with the include); clients send it so.
  return include?.includes(INCLUDE_LOGPROBS) ? topLogprobs ?? 0 : undefined;
}

/**
 * One message item as a chat message. `param` names the item in errors (`input[2]`). Text parts
 * are `input_text` (and `output_text` in an assistant's message); anything else is refused.
 */
export function messageOfItem(item: unknown, param: string): ChatMessage {
  const shape = inputItem.safeParse(item);
  if (!shape.success) throw new InvalidRequestError(`${param} must be an object`, { param, code: 'invalid_value' });
  const type = shape.data.type ?? 'message';
  if (type !== 'message') throw unsupported(`${param}.type`, `input items of type '${type}'`, true);
  const parsed = messageItem.safeParse(item, { reportInput: true });
  if (!parsed.success) {
    const error = toInvalidRequest(parsed.error);
    throw new InvalidRequestError(error.message, { param: error.param ? `${param}.${error.param}` : param, code: error.code ?? 'invalid_value' });
  }
  const { role, content } = parsed.data;
  return { role: role === 'developer' ? 'system' : role, content: typeof content === 'string' ? content : textOfParts(content, `${param}.content`) };
}

/** Text parts joined: `input_text` (and `output_text`, `text`); anything else is refused. `param` names the list. */
function textOfParts(parts: ReadonlyArray<z.infer<typeof textPart>>, param: string): string {
  let text = '';
  for (const [index, part] of parts.entries()) {
    if (part.type !== 'input_text' && part.type !== 'output_text' && part.type !== 'text') throw unsupported(`${param}[${index}].type`, `content parts of type '${part.type}'`, true);
    if (typeof part.text !== 'string') throw new InvalidRequestError(`${param}[${index}].text must be a string`, { param: `${param}[${index}].text`, code: 'invalid_value' });
    text += part.text;
  }
  return text;
}

/** A `function_call` input item: a call an earlier answer made (sent back with its output). */
const functionCallItem = z.object({
  type: z.literal('function_call'),
  call_id: callFieldSchema('call_id'),
  name: callFieldSchema('name'),
  arguments: z.string({ error: 'arguments must be a string (JSON text)' }),
}).passthrough();
/** A `function_call_output` input item: a tool's answer to a call, as text or text parts. */
const functionCallOutputItem = z.object({
  type: z.literal('function_call_output'),
  call_id: callFieldSchema('call_id'),
  output: z.union([z.string(), z.array(textPart).min(1, 'output must hold at least one part')], { error: 'output must be a string or an array of input_text parts' }),
}).passthrough();

/** An input item of a kind other than `message`, parsed with its schema; `param` names it. */
function parseItem<T extends z.ZodTypeAny>(schema: T, item: unknown, param: string): z.infer<T> {
  const parsed = schema.safeParse(item, { reportInput: true });
  if (parsed.success) return parsed.data;
  const error = toInvalidRequest(parsed.error);
  throw new InvalidRequestError(`${param}: ${error.message}`, { param: error.param ? `${param}.${error.param}` : param, code: error.code ?? 'invalid_value' });
}

/**
 * Input items (a response's `input`, a conversation's `items`, named by `at`) as chat messages,
 * each with the index of the item it starts at: messages, `function_call` items (a call joins the
 * assistant message just before it, else makes one with no text) and `function_call_output`
 * items (a `tool` message).
 */
function inputMessagesOf(items: readonly unknown[], at: 'input' | 'items'): InputMessages {
  const messages: ChatMessage[] = [];
  const itemIndex: number[] = [];
  const callItemIndex: number[][] = [];
  for (const [index, item] of items.entries()) {
    const type = inputItem.safeParse(item).data?.type;
    if (type === 'function_call') {
      const call = parseItem(functionCallItem, item, `${at}[${index}]`);
      const toolCall: ToolCall = { id: call.call_id, name: call.name, arguments: call.arguments };
      const last = messages.at(-1);
      if (last?.role === 'assistant') {
        last.toolCalls = [...(last.toolCalls ?? []), toolCall];
        callItemIndex.at(-1)!.push(index);
      } else {
        messages.push({ role: 'assistant', content: '', toolCalls: [toolCall] });
        itemIndex.push(index);
        callItemIndex.push([index]);
      }
    } else if (type === 'function_call_output') {
      const output = parseItem(functionCallOutputItem, item, `${at}[${index}]`);
      messages.push({ role: 'tool', content: typeof output.output === 'string' ? output.output : textOfParts(output.output, `${at}[${index}].output`), toolCallId: output.call_id });
      itemIndex.push(index);
      callItemIndex.push([]);
    } else {
      messages.push(messageOfItem(item, `${at}[${index}]`));
      itemIndex.push(index);
      callItemIndex.push([]);
    }
  }
  return { messages, itemIndex, callItemIndex };
}

/** Input items as chat messages, with the item each message starts at and the item of each of its calls. */
export interface InputMessages {
  messages: ChatMessage[];
  itemIndex: number[];
  callItemIndex: number[][];
}

export function validateCreateResponse(body: unknown, defaults: ValidationDefaults): ValidatedResponseRequest {
  // The count first: thousands of tiny items are refused before any work per item.
  const itemCount = typeof body === 'object' && body !== null && Array.isArray((body as { input?: unknown }).input) ? (body as { input: unknown[] }).input.length : 0;
  if (itemCount > defaults.maxMessages) {
    throw new InvalidRequestError(`input holds ${itemCount} items; at most ${defaults.maxMessages} are accepted per request`, { param: 'input', code: 'too_many_messages' });
  }
  const request = parseRequestBody(responseRequestSchema, body);
  if (request.reasoning !== undefined && request.reasoning !== null) throw unsupported('reasoning', 'reasoning');
  const logprobs = logprobsAsked(request.include, request.top_logprobs);
  if (request.prompt !== undefined && request.prompt !== null) throw unsupported('prompt', 'prompt templates');
  const converted: InputMessages = request.input === undefined ? { messages: [], itemIndex: [], callItemIndex: [] }
    : typeof request.input === 'string'
      ? { messages: [{ role: 'user', content: request.input }], itemIndex: [0], callItemIndex: [[]] }
      : inputMessagesOf(request.input, 'input');
  const input: ChatMessage[] = converted.messages;
  const askedChoice = request.tool_choice == null ? null : typeof request.tool_choice === 'string' ? request.tool_choice : { name: request.tool_choice.name };
  const tooling = resolveTooling((request.tools ?? []).map(toolOf), askedChoice, request.parallel_tool_calls, (index, field) => `tools[${index}].${field}`);
  const conversationId = request.conversation == null ? null : typeof request.conversation === 'string' ? request.conversation : request.conversation.id;
  const previousResponseId = request.previous_response_id ?? null;
  // Something to answer: a turn of a conversation adds at least one item to it.
  if (input.length === 0 && (conversationId !== null || (previousResponseId === null && !request.instructions))) {
    throw new InvalidRequestError(conversationId !== null ? 'input is required with conversation: a turn adds its items to the conversation' : 'input is required unless instructions or previous_response_id give the model something to answer', { param: 'input', code: 'missing_required_parameter' });
  }
  if (conversationId && previousResponseId) throw new InvalidRequestError('previous_response_id and conversation cannot be used together', { param: 'previous_response_id', code: 'invalid_value' });
  const opensConversation = conversationId === null && previousResponseId === null && !request.instructions;
  const misplaced = misplacedSystemItem(input, opensConversation);
  if (misplaced >= 0) {
    const instead = conversationId !== null ? "a conversation's system items are the ones it was created with (POST /v1/conversations with items)" : 'use instructions instead';
    throw new InvalidRequestError(`system and developer items may only open a new conversation; ${instead}`, { param: `input[${converted.itemIndex[misplaced]}].role`, code: 'invalid_value' });
  }
  if (conversationId && request.instructions) {
    throw new InvalidRequestError('instructions cannot be combined with conversation here: a conversation keeps its own system items (create it with one)', { param: 'instructions', code: 'unsupported_parameter' });
  }
  const store = request.store ?? true;
  const background = request.background ?? false;
  if (background && !store) throw new InvalidRequestError('background responses must be stored (store: true)', { param: 'background', code: 'invalid_value' });
  const sampling = resolveSampling({ model: request.model, temperature: request.temperature, top_p: request.top_p, top_k: request.top_k, min_p: request.min_p, stream: request.stream }, request.max_output_tokens, defaults, logprobs);
  const asked = request.text?.format;
  const textFormat: ResponseTextFormat = !asked || asked.type !== 'json_schema'
    ? { type: asked?.type ?? 'text' }
    : { type: 'json_schema', name: asked.name, schema: asked.schema, ...(asked.description != null ? { description: asked.description } : {}), ...(asked.strict != null ? { strict: asked.strict } : {}) };
  const format = outputFormatOf(textFormat);
  assertFormatWithoutCalls(format, tooling, 'text.format');
  return {
    model: request.model,
    input,
    instructions: request.instructions ?? null,
    previousResponseId,
    conversationId,
    store,
    stream: sampling.stream,
    background,
    params: format ? { ...sampling.params, format } : sampling.params,
    maxTokensRequested: sampling.maxTokensRequested,
    topLogprobs: request.top_logprobs ?? null,
    metadata: request.metadata ?? {},
    textFormat,
    tooling,
    // What the response shows: as asked (`auto` may come without tools), `none` by default without tools.
    toolChoice: tooling?.toolChoice ?? askedChoice ?? 'none',
    parallelToolCalls: request.parallel_tool_calls ?? true,
    inputItemIndex: converted.itemIndex,
    inputCallItemIndex: converted.callItemIndex,
  };
}

const itemsField = z.array(z.unknown(), { error: 'items must be an array of message items' }).max(MAX_ITEMS_PER_CALL, `at most ${MAX_ITEMS_PER_CALL} items at a time`);

/**
 * The index of the first system message that does not open the conversation (-1: none). The
 * chat template renders system messages at the start only; `opens`: these messages are the start.
 */
function misplacedSystemItem(messages: readonly ChatMessage[], opens: boolean): number {
  return messages.findIndex((message, index) => message.role === 'system' && !(opens && messages.slice(0, index).every((before) => before.role === 'system')));
}

/**
 * Items as chat messages (function calls and their outputs too); a system item only at the start
 * of a new conversation. Whether an output answers a call of the conversation is checked where
 * its transcript is known (`known`: the calls it made; null: not known here).
 */
function itemsOf(items: unknown[], systemAllowedAtStart: boolean, known: string[] | null): ChatMessage[] {
  const converted = inputMessagesOf(items, 'items');
  const misplaced = misplacedSystemItem(converted.messages, systemAllowedAtStart);
  if (misplaced >= 0) throw new InvalidRequestError('system and developer items may only open a conversation', { param: `items[${converted.itemIndex[misplaced]}].role`, code: 'invalid_value' });
  if (known) assertToolAnswers(converted.messages, known, itemCallParam(converted, 'items'));
  return converted.messages;
}

/** Where input items name a call or its answer: the `call_id` of the item it came from. */
export const itemCallParam = (converted: Pick<InputMessages, 'itemIndex' | 'callItemIndex'>, at: 'items' | 'input') => (index: number, field: 'answer' | 'call', call = 0) =>
  `${at}[${field === 'call' ? converted.callItemIndex[index]?.[call] ?? converted.itemIndex[index] : converted.itemIndex[index]}].call_id`;

export interface ValidatedCreateConversation {
  items: ChatMessage[];
  metadata: Record<string, string>;
}

export function validateCreateConversation(body: unknown): ValidatedCreateConversation {
  const request = parseRequestBody(z.object({ items: itemsField.nullish(), metadata: metadataSchema.nullish() }), body);
  return { items: itemsOf(request.items ?? [], true, []), metadata: request.metadata ?? {} };
}

/** Items to add to a conversation whose transcript made `known` calls (null: checked elsewhere, as the edge does). */
export function validateConversationItems(body: unknown, known: string[] | null = null): ChatMessage[] {
  const request = parseRequestBody(z.object({ items: itemsField.min(1, 'items must hold at least one item') }), body);
  return itemsOf(request.items, false, known);
}

/** The new metadata of a conversation; null (as OpenAI's client may send) clears it. */
export function validateConversationUpdate(body: unknown): Record<string, string> {
  return parseRequestBody(z.object({ metadata: metadataSchema.nullable() }), body).metadata ?? {};
}

/** `after`, `limit` and `order` of a list call (OpenAI's defaults: 20, newest first). */
export interface ListQuery {
  after: string | null;
  limit: number;
  order: 'asc' | 'desc';
}

export function validateListQuery(query: Record<string, string | undefined>, limits: { defaultLimit: number; maxLimit: number } = { defaultLimit: 20, maxLimit: 100 }): ListQuery {
  const limit = query.limit === undefined ? limits.defaultLimit : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > limits.maxLimit) throw new InvalidRequestError(`limit must be an integer from 1 to ${limits.maxLimit}`, { param: 'limit', code: 'invalid_value' });
  const order = query.order ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw new InvalidRequestError("order must be 'asc' or 'desc'", { param: 'order', code: 'invalid_value' });
  return { after: query.after || null, limit, order };
}

/**
 * A window by creation time for a list of files or batches (unix seconds, both bounds
 * exclusive): our extension, how the edge pages one list merged from several regions (an
 * `after` id is the position in one region's list only, so the others are asked by time).
 */
export interface CreatedWindow {
  createdBefore: number | null;
  createdAfter: number | null;
}

/** A query parameter that must be a non-negative integer: digits only (Number() would also take `1e30`, `0x10`, ` 5`); null otherwise. */
export function wholeNumberParam(text: string): number | null {
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

export function validateCreatedWindow(query: Record<string, string | undefined>): CreatedWindow {
  const bound = (param: 'created_before' | 'created_after') => {
    const text = query[param];
    if (text === undefined || text === '') return null;
    const value = wholeNumberParam(text);
    if (value === null) throw new InvalidRequestError(`${param} must be a unix time in seconds (a non-negative integer)`, { param, code: 'invalid_value' });
    return value;
  };
  return { createdBefore: bound('created_before'), createdAfter: bound('created_after') };
}

/** A response's lifecycle, as OpenAI names it. */
export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';
export const ACTIVE_RESPONSE_STATUSES: readonly ResponseStatus[] = ['queued', 'in_progress'];

/** How a response ended: what its record keeps once it is no longer active. */
export interface ResponseOutcome {
  status: Exclude<ResponseStatus, 'queued' | 'in_progress'>;
  outputText: string;
  /**
   * The lengths of the deltas `outputText` was streamed in (its token stream's entries), so a
   * replay sends the very events a live reader got; absent when it was one delta (or unknown).
   */
  deltaLengths?: number[];
  /** The answer's log probabilities, one entry per token, when the request included them. */
  logprobs?: TokenLogprob[];
  /**
   * How many of `logprobs` each delta carried (a token without text of its own rides on the
   * next delta; those after the last are only on the whole text), so a replay sends them alike.
   */
  deltaLogprobCounts?: number[];
  usage: { inputTokens: number; cachedTokens: number; outputTokens: number } | null;
  /** For `failed`: the error as OpenAI shows it. */
  error: { code: string; message: string } | null;
  /** For `incomplete`: why (`max_output_tokens`). */
  incompleteReason: string | null;
  completedAtMs: number;
  /** The function calls the answer made (absent: none). */
  toolCalls?: ToolCall[];
}

/** A stored response as the region keeps it (parsed from Redis by `@bamba/region`'s response store). */
export interface ResponseRecord {
  id: string;
  tenant: string;
  status: ResponseStatus;
  model: string;
  createdAtMs: number;
  background: boolean;
  instructions: string | null;
  previousResponseId: string | null;
  conversationId: string | null;
  metadata: Record<string, string>;
  temperature: number;
  topP: number;
  maxOutputTokens: number | null;
  /** `top_logprobs` as asked. */
  topLogprobs: number | null;
  textFormat: ResponseTextFormat;
  /** The function tools it offered (empty: none), how they could be used, and whether several calls could be made. */
  tools: Tool[];
  toolChoice: ToolChoice;
  parallelToolCalls: boolean;
  /** The response's own input items (with item ids). */
  input: ChatMessage[];
  /** The conversation before `input` (instructions excluded): a child's context starts with it. */
  history: ChatMessage[];
  /** Where its token events are (the request stream's relay group), '' before it is queued. */
  relayGroup: string;
  deadlineAtMs: number;
  outcome: ResponseOutcome | null;
}

/** A response as first stored (queued or in progress: no outcome yet). */
export type NewResponse = Omit<ResponseRecord, 'outcome'>;

/** A response's context: its instructions (as a system message), the history it continues, its input. */
export function responseContext(validated: ValidatedResponseRequest, history: ChatMessage[], input: ChatMessage[] = validated.input): ChatMessage[] {
  return [...(validated.instructions ? [{ role: 'system' as const, content: validated.instructions }] : []), ...history, ...input];
}

/**
 * The generation a response asks for: a chat of its context (`responseContext`); a conversation
 * turn sends only its `input`, the gpu-node reads the transcript itself.
 */
export function responseGeneration(validated: ValidatedResponseRequest, context: ChatMessage[], input: ChatMessage[] = validated.input): ValidatedGenerationRequest {
  return {
    model: validated.model,
    input: { kind: 'chat', messages: validated.conversationId ? input : context, ...validated.tooling },
    params: validated.params,
    stream: validated.stream,
    includeUsage: false,
    maxTokensRequested: validated.maxTokensRequested,
    endpoint: 'chat',
    sessionId: validated.conversationId,
    choices: 1,
  };
}

/** A new response's record (queued when background, else in progress), before it is queued. */
export function newResponseRecord(validated: ValidatedResponseRequest, fields: Pick<ResponseRecord, 'id' | 'tenant' | 'createdAtMs' | 'input' | 'history' | 'deadlineAtMs'>): NewResponse {
  return {
    ...fields,
    status: validated.background ? 'queued' : 'in_progress',
    model: validated.model,
    background: validated.background,
    instructions: validated.instructions,
    previousResponseId: validated.previousResponseId,
    conversationId: validated.conversationId,
    metadata: validated.metadata,
    temperature: validated.params.temperature,
    topP: validated.params.topP,
    topLogprobs: validated.topLogprobs,
    // What caps the answer, asked for or the default (what `incomplete_details: max_output_tokens`
    // refers to); a value no model allows is refused at admission, stored meanwhile as a safe integer.
    maxOutputTokens: Math.min(validated.params.maxTokens, Number.MAX_SAFE_INTEGER),
    textFormat: validated.textFormat,
    tools: validated.tooling?.tools ?? [],
    toolChoice: validated.toolChoice,
    parallelToolCalls: validated.parallelToolCalls,
    relayGroup: '',
  };
}

/** The answer's text as an outcome keeps it (`deltaLengths` and the per-delta counts for a replay). */
export type OutcomeText = Pick<ResponseOutcome, 'outputText' | 'deltaLengths' | 'logprobs' | 'deltaLogprobCounts'>;

/** How a response that got its whole answer ended: completed, or incomplete when its token limit cut it. */
export function endedOutcome(text: OutcomeText, end: Extract<AnswerPiece, { kind: 'end' }>, nowMs: number): ResponseOutcome {
  const incomplete = end.finishReason === 'length';
  return {
    status: incomplete ? 'incomplete' : 'completed',
    ...text,
    usage: { inputTokens: end.promptTokens, cachedTokens: end.cachedTokens, outputTokens: end.completionTokens },
    error: null,
    incompleteReason: incomplete ? 'max_output_tokens' : null,
    completedAtMs: nowMs,
    ...(end.toolCalls ? { toolCalls: end.toolCalls } : {}),
  };
}

/** Chat Completions names in refusals found on the way (admission, the gpu-node), as the Responses API calls them. */
const RESPONSES_PARAMS: Record<string, string> = { max_tokens: 'max_output_tokens', messages: 'input', response_format: 'text.format', session_id: 'conversation' };

export function inResponsesTerms(error: unknown, paramOfMessage: (messageIndex: number) => string): unknown {
  // A refusal from the gpu-node arrives rebuilt from the wire: a BambaError of type invalid_request_error.
  if (!(error instanceof BambaError) || error.type !== 'invalid_request_error' || !error.param) return error;
  // `messages[3].tool_calls`: the input item that message came from, or the history before the input.
  const message = messageParamOf(error.param);
  const param = message ? paramOfMessage(message.index) : RESPONSES_PARAMS[error.param];
  return param ? withParam(error, param) : error;
}

/**
 * A refusal of a response's generation in its own terms. The gpu-node's messages are its context:
 * instructions, then the history (`historyLength` messages), then the input; a conversation
 * turn's are its input alone (the transcript is `conversation`).
 */
export function responseRefusal(validated: ValidatedResponseRequest, historyLength: number, error: unknown): unknown {
  const before = validated.conversationId ? 'conversation' : validated.previousResponseId ? 'previous_response_id' : 'instructions';
  const ahead = validated.conversationId ? 0 : (validated.instructions ? 1 : 0) + historyLength;
  return inResponsesTerms(error, (index) => (index >= ahead ? `input[${validated.inputItemIndex[index - ahead] ?? 0}]` : before));
}
