/**
 * What a chat job's tools make of its answer: the grammar that holds it (a forced choice's calls,
 * else the job's response format), and the reader that takes calls out of it (none under
 * `tool_choice: none`, or without tools).
 */
import { randomBytes } from 'node:crypto';
import { callableTools, callSchemaOf, forcesCalls, type GenerationJob, type Tool, type ToolCall } from '@bamba/shared';
import type { AnswerGrammar } from '../engine/engine.js';
import { ToolCallReader } from '../engine/tool-call-syntax.js';

export interface AnswerTools {
  /** The tools the prompt lists. */
  tools: readonly Tool[] | undefined;
  /** What the answer is held to, if anything. */
  grammar: AnswerGrammar | undefined;
  /** A reader for one answer, or null when it can make no call. */
  newReader(): ToolCallReader | null;
}

export function answerToolsOf(job: GenerationJob): AnswerTools {
  const tools = job.input.kind === 'chat' ? job.input.tools : undefined;
  const choice = job.input.kind === 'chat' ? job.input.toolChoice ?? 'auto' : 'none';
  const parallel = job.input.kind === 'chat' ? job.input.parallelToolCalls ?? true : true;
  if (!tools || choice === 'none') return { tools, grammar: job.params.format, newReader: () => null };
  const callable = callableTools(tools, choice);
  const names = new Set(callable.map((tool) => tool.name));
  return {
    tools,
    // Under `auto` the model writes what it likes (the gateway refuses a response format there).
    grammar: forcesCalls(choice) ? { type: 'tool_calls', schema: callSchemaOf(callable), parallel } : undefined,
    newReader: () => new ToolCallReader(names, parallel),
  };
}

/** A new call's id, as OpenAI spells them. */
export function withCallIds(calls: ReadonlyArray<Omit<ToolCall, 'id'>>): ToolCall[] {
  return calls.map((call) => ({ id: `call_${randomBytes(12).toString('base64url')}`, ...call }));
}
