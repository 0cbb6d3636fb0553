/**
 * OpenAI's Responses and Conversations object shapes, built from our records: the response
 * object, its output message item, input and conversation items, list pages.
 */
import { answerItemId, type ChatMessage } from './jobs.js';
import type { TokenLogprob } from './logprobs.js';
import type { ResponseOutcome, ResponseRecord, ResponseStatus } from './responses.js';
import type { SessionRecord } from './sessions.js';
import { mayCall, type ToolCall } from './tools.js';

/** A response's state at a moment: its record, with the status and outcome known by then. */
export interface ResponseView {
  record: ResponseRecord;
  status: ResponseStatus;
  outcome: ResponseOutcome | null;
  /** Whether it is retrievable (`store`). */
  store: boolean;
}

export function viewOf(record: ResponseRecord, store = true): ResponseView {
  return { record, status: record.outcome?.status ?? record.status, outcome: record.outcome, store };
}

/** `logprobs`: the text's tokens' entries, when the request included them. */
export function outputTextPart(text: string, logprobs: readonly TokenLogprob[] = []) {
  return { type: 'output_text' as const, text, annotations: [], logprobs };
}

/** The answer as a message item; `status` follows the response's. */
export function outputMessage(responseId: string, text: string, status: 'in_progress' | 'completed' | 'incomplete', withContent = true, logprobs?: readonly TokenLogprob[]) {
  return { type: 'message' as const, id: answerItemId(responseId), status, role: 'assistant' as const, content: withContent ? [outputTextPart(text, logprobs)] : [] };
}

/** The item id of a function call: from its call id (`call_x` → `fc_call_x`, one to one), so every view of the call agrees. */
export const functionCallItemId = (callId: string) => `fc_${callId}`;
/** The call id a function call's item id names, or null for another item's id. */
export const callIdOfItem = (itemId: string): string | null => (itemId.startsWith('fc_') ? itemId.slice('fc_'.length) : null);

/** A function call as an output (or input) item. */
export function functionCallItem(call: ToolCall, status: 'in_progress' | 'completed', args = call.arguments) {
  return { type: 'function_call' as const, id: functionCallItemId(call.id), call_id: call.id, name: call.name, arguments: args, status };
}

/**
 * Whether an answer (or a history's message) shows as a message item: always, unless it made
 * function calls and wrote no text before them (then it is the calls alone, as OpenAI's output).
 */
const showsText = (content: string, toolCalls: readonly ToolCall[] | undefined): boolean => content !== '' || !toolCalls;
export const showsMessage = (outcome: ResponseOutcome): boolean => showsText(outcome.outputText, outcome.toolCalls);

/** Whether a response offered tools its model could call (its answer may then be calls only). */
export const mayCallTools = (record: ResponseRecord): boolean => mayCall(record.tools, record.toolChoice);

function usageOf(outcome: ResponseOutcome | null) {
  const usage = outcome?.usage;
  if (!usage) return null;
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

/** The response object. `output` holds the answer once the response has ended (streams add it by events before). */
export function responseObject(view: ResponseView) {
  const { record, outcome } = view;
  const ended = outcome !== null;
  const hasAnswer = ended && (outcome.status === 'completed' || outcome.status === 'incomplete' || outcome.outputText !== '');
  const answerItems = hasAnswer
    ? [
      ...(showsMessage(outcome) ? [outputMessage(record.id, outcome.outputText, outcome.status === 'completed' ? 'completed' : 'incomplete', true, outcome.logprobs)] : []),
      ...(outcome.toolCalls ?? []).map((call) => functionCallItem(call, 'completed')),
    ]
    : [];
  return {
    id: record.id,
    object: 'response' as const,
    created_at: Math.floor(record.createdAtMs / 1000),
    status: view.status,
    background: record.background,
    completed_at: outcome?.status === 'completed' ? Math.floor(outcome.completedAtMs / 1000) : null,
    error: outcome?.error ?? null,
    incomplete_details: outcome?.incompleteReason ? { reason: outcome.incompleteReason } : null,
    instructions: record.instructions,
    max_output_tokens: record.maxOutputTokens,
    metadata: record.metadata,
    model: record.model,
    // A failed or cancelled response's partial answer is an incomplete message.
    output: answerItems,
    parallel_tool_calls: record.parallelToolCalls,
    previous_response_id: record.previousResponseId,
    conversation: record.conversationId ? { id: record.conversationId } : null,
    store: view.store,
    temperature: record.temperature,
    text: { format: record.textFormat },
    tool_choice: typeof record.toolChoice === 'string' ? record.toolChoice : { type: 'function' as const, name: record.toolChoice.name },
    tools: record.tools.map((tool) => ({ type: 'function' as const, name: tool.name, description: tool.description ?? null, parameters: tool.parameters ?? null, strict: tool.strict ?? null })),
    top_logprobs: record.topLogprobs,
    top_p: record.topP,
    truncation: 'disabled' as const,
    usage: usageOf(outcome),
  };
}

/**
 * A message as items (input items, conversation items): a message item, then its function
 * calls as items of their own; a tool's answer is a `function_call_output` item. Items without
 * an id of their own get their position's.
 */
export function itemsOfMessage(message: ChatMessage, fallbackId: string): Array<{ type: 'message' | 'function_call' | 'function_call_output'; id: string } & Record<string, unknown>> {
  const id = message.id ?? fallbackId;
  if (message.role === 'tool') return [{ type: 'function_call_output' as const, id, call_id: message.toolCallId ?? '', output: message.content, status: 'completed' as const }];
  return [
    ...(showsText(message.content, message.toolCalls)
      ? [{
        type: 'message' as const,
        id,
        status: message.status ?? ('completed' as const),
        role: message.role,
        content: [message.role === 'assistant' ? outputTextPart(message.content) : { type: 'input_text' as const, text: message.content }],
      }]
      : []),
    ...(message.toolCalls ?? []).map((call) => functionCallItem(call, 'completed')),
  ];
}

export function conversationObject(session: SessionRecord) {
  return { id: session.id, object: 'conversation' as const, created_at: Math.floor(session.createdAtMs / 1000), metadata: session.metadata };
}

/** One page of a list (`after` = the last id of the previous page), in OpenAI's list shape. */
export function listPage<T extends { id: string }>(items: T[], query: { after: string | null; limit: number; order: 'asc' | 'desc' }) {
  const ordered = query.order === 'asc' ? items : [...items].reverse();
  const after = query.after ? ordered.findIndex((item) => item.id === query.after) : -1;
  // A cursor that is not (or no longer) in the list: an empty page, never the first page again.
  if (query.after && after === -1) return listObject([], false);
  const start = after + 1;
  const data = ordered.slice(start, start + query.limit);
  return listObject(data, start + data.length < ordered.length);
}

/** OpenAI's cursor-paged list object around one page. */
export function listObject<T extends { id: string }>(data: T[], hasMore: boolean) {
  return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore };
}
