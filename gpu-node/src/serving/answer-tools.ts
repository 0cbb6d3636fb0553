/**
 * What a chat job's tools make of its answer: the grammar that holds it (a forced choice's calls,
 * else the job's response format), and the reader that takes calls out of it (none under
 * `tool_choice: none`, or without tools).
 */
import { randomBytes } from 'node:crypto';
import { callableTools, callSchemaOf, forcesCalls, mayCall, type GenerationJob, type Tool, type ToolCall } from '@bamba/shared';
import type { AnswerGrammar } from '../engine/engine.js';
import { ToolCallReader } from '../engine/tool-call-syntax.js';

export interface AnswerTools {
  /** The tools the prompt lists. */
  tools: readonly Tool[] | undefined;
  /** What the answer is held to, if anything. */
  grammar: AnswerGrammar | undefined;
  /**
   * Whether the answer is calls only (`required`, a named tool): held by the grammar to its end,
   * which no stop string cuts, and an unfinished call is dropped rather than shown as text.
   */
  forced: boolean;
  /** A reader for one answer, or null when it can make no call. */
  newReader(): ToolCallReader | null;
}

export function answerToolsOf(job: GenerationJob): AnswerTools {
  const tools = job.input.kind === 'chat' ? job.input.tools : undefined;
  const choice = job.input.kind === 'chat' ? job.input.toolChoice ?? 'auto' : 'none';
  const parallel = job.input.kind === 'chat' ? job.input.parallelToolCalls ?? true : true;
  if (!mayCall(tools, choice) || !tools) return { tools, grammar: job.params.format, forced: false, newReader: () => null };
  const callable = callableTools(tools, choice);
  const names = new Set(callable.map((tool) => tool.name));
  const forced = forcesCalls(choice);
  // A named tool is called exactly once (OpenAI's); `required` and `auto` as parallel_tool_calls says.
  const several = typeof choice === 'object' ? false : parallel;
  return {
    tools,
    // Under `auto` the model writes what it likes (the gateway refuses a response format there).
    grammar: forced ? { type: 'tool_calls', schema: callSchemaOf(callable), parallel: several } : undefined,
    forced,
    newReader: () => new ToolCallReader(names, several, forced),
  };
}

/** A new call's id, as OpenAI spells them. */
export function withCallIds(calls: ReadonlyArray<Omit<ToolCall, 'id'>>): ToolCall[] {
  return calls.map((call) => ({ id: `call_${randomBytes(12).toString('base64url')}`, ...call }));
}
