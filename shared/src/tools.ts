/**
 * Tool calling (OpenAI's function tools) as it travels with a chat job: the tools offered, how
 * the model may use them (`tool_choice`), the calls an answer made, and the schema that holds a
 * forced call's arguments. The gateway builds these from a validated request; the gpu-node
 * renders the tools into the prompt through the model's chat template, holds a forced answer to
 * calls of `callSchemaOf` with a grammar, and reads the calls out of what the model wrote.
 */
import { z } from 'zod';
import { InvalidRequestError } from './errors.js';
import { ANY_OBJECT_SCHEMA, DEFINITION_CONTAINERS, definitionName, jsonSchemaProblem, MAX_SCHEMA_DEPTH, SUBSCHEMA_KEYS, SUBSCHEMA_LIST_KEYS } from './output-format.js';

/** OpenAI's limit on tools per request. */
export const MAX_TOOLS = 128;

/** A function's name (OpenAI's rule); also what a forced call's grammar writes verbatim. */
export const toolNameSchema = (field: string) => z.string({ error: `${field} is required` }).regex(/^[A-Za-z0-9_-]{1,64}$/, `${field} must be 1 to 64 letters, digits, _ or -`);

/** A function tool as the job carries it. `parameters` was checked when the choice forces calls; `strict` is kept to be shown. */
export const toolSchema = z.object({
  name: toolNameSchema('name'),
  description: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  strict: z.boolean().optional(),
});
export type Tool = z.infer<typeof toolSchema>;

/** A tool as a request spells its fields (chat's `function`, or a Responses tool), as the job carries it. */
export function toolOf(spelled: { name: string; description?: string | null; parameters?: Record<string, unknown> | null; strict?: boolean | null }): Tool {
  return {
    name: spelled.name,
    ...(spelled.description != null ? { description: spelled.description } : {}),
    ...(spelled.parameters != null ? { parameters: spelled.parameters } : {}),
    ...(spelled.strict != null ? { strict: spelled.strict } : {}),
  };
}

/** Whether an answer may make calls: tools offered, and a choice other than `none`. */
export const mayCall = (tools: readonly Tool[] | undefined, choice: ToolChoice | undefined): boolean => (tools?.length ?? 0) > 0 && (choice ?? 'auto') !== 'none';

/**
 * A structured output's format and tools the model may call do not go together: the format's
 * grammar would leave it no way to write a call. `param` is where the request sets the format.
 */
export function assertFormatWithoutCalls(format: unknown, tooling: Tooling | undefined, param: 'response_format' | 'text.format'): void {
  if (format && tooling && mayCall(tooling.tools, tooling.toolChoice)) {
    throw new InvalidRequestError(`${param} cannot be combined with tools the model may call; set tool_choice to 'none', or leave ${param} out`, { param, code: 'unsupported_value' });
  }
}

/** The ids of the calls some messages made. */
export const callIdsOf = (messages: ReadonlyArray<{ toolCalls?: readonly ToolCall[] }>): string[] => messages.flatMap((message) => (message.toolCalls ?? []).map((call) => call.id));

/**
 * `none`: the tools are shown, no call is made; `auto`: the model decides; `required`: one or more
 * calls of any tool; `{ name }`: exactly one call of that tool.
 */
export const toolChoiceSchema = z.union([z.enum(['none', 'auto', 'required']), z.object({ name: toolNameSchema('name') })]);
export type ToolChoice = z.infer<typeof toolChoiceSchema>;

/** Longest call id, and name of a call in a history, a request may send. */
export const MAX_CALL_FIELD_LENGTH = 256;

/** A call as an answer made it (and as a later request's history holds it). `arguments` is JSON text, as OpenAI sends it. */
export const toolCallSchema = z.object({
  id: z.string().min(1).max(MAX_CALL_FIELD_LENGTH),
  name: z.string().min(1).max(MAX_CALL_FIELD_LENGTH),
  arguments: z.string(),
});
export type ToolCall = z.infer<typeof toolCallSchema>;

/** A call id or a history call's name as a request sends it. */
export const callFieldSchema = (field: string) => z.string({ error: `${field} is required` }).min(1, `${field} must not be empty`).max(MAX_CALL_FIELD_LENGTH, `${field} holds at most ${MAX_CALL_FIELD_LENGTH} characters`);

/** Whether the choice makes the answer calls only (held to `callSchemaOf` by a grammar). */
export const forcesCalls = (choice: ToolChoice): boolean => choice !== 'none' && choice !== 'auto';

/** The tools a forced answer may call: the named one, or all. */
export const callableTools = (tools: readonly Tool[], choice: ToolChoice): Tool[] => (typeof choice === 'object' ? tools.filter((tool) => tool.name === choice.name) : [...tools]);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A checked schema with its `$ref`s renamed (its definitions are moved into another root). */
function renameReferences(node: unknown, rename: (name: string) => string): unknown {
  if (!isObject(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string' && definitionName(value) !== null) out[key] = `#/$defs/${rename(definitionName(value)!)}`;
    else if ((SUBSCHEMA_KEYS as readonly string[]).includes(key)) out[key] = renameReferences(value, rename);
    else if ((SUBSCHEMA_LIST_KEYS as readonly string[]).includes(key) && Array.isArray(value)) out[key] = value.map((child) => renameReferences(child, rename));
    // Only `properties`: definitions were taken to the root before.
    else if (key === 'properties' && isObject(value)) out[key] = Object.fromEntries(Object.entries(value).map(([name, child]) => [name, renameReferences(child, rename)]));
    else out[key] = value;
  }
  return out;
}

/**
 * The JSON Schema of one call of any of `tools`: `{"name": <the tool's name>, "arguments": <its
 * parameters>}`, alternatives told apart by their first property, the name (a discriminator, as
 * the schema check wants). Each tool's definitions move to the root under `<tool>.<name>`, since
 * a `$ref` points from the root. Each tool's parameters passed `jsonSchemaProblem` on their own.
 */
export function callSchemaOf(tools: readonly Tool[]): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  const calls = tools.map((tool) => {
    const rename = (name: string) => `${tool.name}.${name}`;
    const parameters: Record<string, unknown> = { ...(tool.parameters ?? ANY_OBJECT_SCHEMA) };
    for (const container of DEFINITION_CONTAINERS) {
      const held = parameters[container];
      delete parameters[container];
      if (isObject(held)) for (const [name, def] of Object.entries(held)) defs[rename(name)] = renameReferences(def, rename);
    }
    return {
      type: 'object',
      properties: { name: { const: tool.name }, arguments: renameReferences(parameters, rename) },
      required: ['name', 'arguments'],
      additionalProperties: false,
    };
  });
  const call = calls.length === 1 ? calls[0]! : { anyOf: calls };
  return Object.keys(defs).length > 0 ? { ...call, $defs: defs } : call;
}

/** The first reason a forced choice's tools cannot be held by a grammar, with where it is (`parameters…`, or the whole). */
export function forcedToolsProblem(tools: readonly Tool[]): { toolIndex: number | null; path: (string | number)[]; message: string } | null {
  for (const [index, tool] of tools.entries()) {
    if (!tool.parameters) continue;
    const problem = jsonSchemaProblem(tool.parameters);
    if (problem) return { toolIndex: index, path: problem.path, message: problem.message };
  }
  // Each fits alone; together they must fit one grammar's bounds too.
  const together = jsonSchemaProblem(callSchemaOf(tools));
  return together ? { toolIndex: null, path: [], message: `the tools' parameters together: ${together.message}` } : null;
}

/** Deepest nesting of JSON a tool's parameters may have (what renders and parses them recurses). */
const MAX_PARAMETERS_NESTING = 2 * MAX_SCHEMA_DEPTH + 8;

/** How deep `value` nests (objects and arrays), counted without recursion, or Infinity past `limit`. */
function nestingOf(value: unknown, limit: number): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 0]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth + 1 > limit) return Infinity;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * A tool's parameters as the job carries them: absent (or `{}`, OpenAI's "no parameters") means
 * any object; else a schema whose root is an object (the arguments are a JSON object), nested no
 * deeper than what renders and parses it safely. Every tool's, whatever the tool choice.
 */
function parametersOf(parameters: Record<string, unknown> | undefined, param: string): Record<string, unknown> | undefined {
  if (!parameters || Object.keys(parameters).length === 0) return undefined;
  if (nestingOf(parameters, MAX_PARAMETERS_NESTING) > MAX_PARAMETERS_NESTING) throw new InvalidRequestError(`${param} nests deeper than ${MAX_PARAMETERS_NESTING} levels`, { param, code: 'invalid_value' });
  if (parameters.type !== 'object') throw new InvalidRequestError(`${param} must be a JSON Schema of type "object" (a call's arguments are a JSON object)`, { param: `${param}.type`, code: 'invalid_value' });
  return parameters;
}

/** A request's tools and how they may be used, as a chat job carries them. */
export interface Tooling {
  tools: Tool[];
  toolChoice: ToolChoice;
  parallelToolCalls: boolean;
}

/**
 * The tools a request offers with its `tool_choice` (null: not set) and `parallel_tool_calls`, the
 * same rules for chat and Responses; `fieldOf` names a tool's field as the request spells it
 * (`tools[0].function.parameters` on chat, `tools[0].parameters` on Responses). Undefined when
 * no tools are offered. A forced choice's tools must be what a grammar holds (`forcedToolsProblem`).
 */
export function resolveTooling(offered: Tool[], asked: ToolChoice | null, parallel: boolean | null | undefined, fieldOf: (index: number, field: 'name' | 'parameters') => string): Tooling | undefined {
  const tools = offered.map((tool, index) => {
    const { parameters, ...rest } = tool;
    const checked = parametersOf(parameters, fieldOf(index, 'parameters'));
    return checked ? { ...rest, parameters: checked } : rest;
  });
  if (tools.length === 0) {
    // `auto` without tools is what OpenAI's Responses objects show by default, and clients send it back.
    if (asked !== null && forcesCalls(asked)) throw new InvalidRequestError('tool_choice needs tools to choose from', { param: 'tool_choice', code: 'invalid_value' });
    return undefined;
  }
  const seen = new Set<string>();
  for (const [index, tool] of tools.entries()) {
    if (seen.has(tool.name)) throw new InvalidRequestError(`tools[${index}]: two tools are named '${tool.name}'`, { param: fieldOf(index, 'name'), code: 'invalid_value' });
    seen.add(tool.name);
  }
  const toolChoice: ToolChoice = asked ?? 'auto';
  if (typeof toolChoice === 'object' && !seen.has(toolChoice.name)) {
    throw new InvalidRequestError(`tool_choice names '${toolChoice.name.slice(0, 80)}', which is not among the tools`, { param: 'tool_choice', code: 'invalid_value' });
  }
  if (forcesCalls(toolChoice)) {
    // A forced answer is held to the arguments' schemas by a grammar: they must be what it enforces.
    const held = callableTools(tools, toolChoice);
    const problem = forcedToolsProblem(held);
    if (problem) {
      const index = problem.toolIndex === null ? null : tools.indexOf(held[problem.toolIndex]!);
      const param = index === null ? 'tools' : problem.path.reduce<string>((path, part) => (typeof part === 'number' ? `${path}[${part}]` : `${path}.${part}`), fieldOf(index, 'parameters'));
      throw new InvalidRequestError(`${param}: ${problem.message} (a forced tool call's arguments are held to its parameters; with tool_choice 'auto' they are not)`, { param, code: 'invalid_value' });
    }
  }
  return { tools, toolChoice, parallelToolCalls: parallel ?? true };
}

/**
 * Every tool message answers a call made before it: by an earlier message, or one of `known`
 * (the calls of a history the request continues); and no two calls share an id (an answer names
 * one call). `paramOf` names a message's field: its call id (`answer`), or the id of its `call`th call.
 */
export function assertToolAnswers(messages: ReadonlyArray<{ role: string; toolCalls?: readonly ToolCall[]; toolCallId?: string }>, known: Iterable<string>, paramOf: (index: number, field: 'answer' | 'call', call?: number) => string): void {
  const calls = new Set(known);
  for (const [index, message] of messages.entries()) {
    for (const [position, call] of (message.toolCalls ?? []).entries()) {
      if (calls.has(call.id)) throw new InvalidRequestError(`${paramOf(index, 'call', position)}: a call with id '${call.id.slice(0, 80)}' was already made; each call needs its own id`, { param: paramOf(index, 'call', position), code: 'invalid_value' });
      calls.add(call.id);
    }
    if (message.role === 'tool' && !calls.has(message.toolCallId ?? '')) {
      throw new InvalidRequestError(`${paramOf(index, 'answer')}: a tool's answer must follow the call it answers; no earlier call has id '${(message.toolCallId ?? '').slice(0, 80)}'`, { param: paramOf(index, 'answer'), code: 'invalid_value' });
    }
  }
}
