/**
 * How a model writes tool calls: `<tool_call>{"name": "get_weather", "arguments": {"city":
 * "Paris"}}</tool_call>`, one per call, after any text (Granite 4's and Hermes' tags, which the
 * generated models' chat template uses too: model-gen's `CHAT_TEMPLATE` writes a history's calls
 * exactly as `callText` does, so a forced answer re-renders to the tokens the model generated and
 * the next request resumes from its snapshot).
 *
 * Two halves: the grammar that holds a forced answer to calls only (`toolCallsGrammar`, over
 * node-llama-cpp's JSON-schema grammar of shared's `callSchemaOf`), and the reader that takes the
 * calls out of an answer as it streams (`ToolCallReader`): the text before the first tag goes out
 * as it comes, the rest is held until the end.
 */
import type { ToolCall } from '@bamba/shared';

export const TOOL_CALL_OPEN = '<tool_call>';
export const TOOL_CALL_CLOSE = '</tool_call>';
/** The call object's text around its name (as JSON) and its arguments: `{"name": …, "arguments": …}`. */
const BEFORE_NAME = '{"name": ';
const BEFORE_ARGUMENTS = ', "arguments": ';
const AFTER_ARGUMENTS = '}';

/** A call as the model writes it (and as the template renders a history's). */
export function callText(name: string, args: string): string {
  return `${TOOL_CALL_OPEN}${BEFORE_NAME}${JSON.stringify(name)}${BEFORE_ARGUMENTS}${args}${AFTER_ARGUMENTS}${TOOL_CALL_CLOSE}`;
}

/** A GBNF string literal of `text` (quotes and backslashes escaped). */
const gbnfLiteral = (text: string) => `"${text.replace(/[\\"]/g, (character) => `\\${character}`)}"`;

/**
 * A call object's rule in node-llama-cpp's grammar (3.21): `"{" ws "\"name\"" ":" [ ]? NAME
 * comma-ws "\"arguments\"" ":" [ ]? ARGS ws "}"`, with free whitespace (newlines, indents).
 */
const CALL_OBJECT = /^"\{" \S+ "\\"name\\"" ":" \[ \]\? (\S+) \S+ "\\"arguments\\"" ":" \[ \]\? (\S+) \S+ "\}"$/;
/** The same object with `callText`'s spacing only: the answer is written as a history renders. */
const fixedCallObject = (definition: string): string | null => {
  const match = CALL_OBJECT.exec(definition);
  return match ? `${gbnfLiteral(BEFORE_NAME)} ${match[1]} ${gbnfLiteral(BEFORE_ARGUMENTS)} ${match[2]} ${gbnfLiteral(AFTER_ARGUMENTS)}` : null;
};

const CALL_RULE = 'tool-call-object';

/**
 * The grammar of an answer that is calls only, from the tightened grammar of one call object
 * (whose root is that object, or a choice of such objects, one per tool): each object keeps its
 * name and arguments rules with fixed spacing, wrapped in the tags; one call, or several when
 * `parallel`. Throws when the generated grammar does not look as expected.
 */
export function toolCallsGrammar(callGrammar: string, parallel: boolean): string {
  const lines = callGrammar.split('\n');
  const rootAt = lines.findIndex((line) => line.startsWith('root ::= '));
  if (rootAt === -1) throw new Error('the call grammar has no root rule');
  if (lines.some((line) => line.startsWith(`${CALL_RULE} ::= `))) throw new Error(`the call grammar already has a rule named ${CALL_RULE}`);
  const root = lines[rootAt]!.slice('root ::= '.length);
  const inline = fixedCallObject(root);
  if (inline) {
    lines[rootAt] = `${CALL_RULE} ::= ${inline}`;
  } else {
    // One object per tool: `( rule1 | rule9 )`, each rule a call object.
    const alternatives = /^\( (\S+(?: \| \S+)*) \)$/.exec(root)?.[1]?.split(' | ');
    if (!alternatives) throw new Error(`unexpected root rule in the call grammar: ${root.slice(0, 200)}`);
    for (const name of alternatives) {
      const at = lines.findIndex((line) => line.startsWith(`${name} ::= `));
      const fixed = at === -1 ? null : fixedCallObject(lines[at]!.slice(`${name} ::= `.length));
      if (!fixed) throw new Error(`unexpected call rule in the call grammar: ${name}`);
      lines[at] = `${name} ::= ${fixed}`;
    }
    lines[rootAt] = `${CALL_RULE} ::= ${root}`;
  }
  const call = `"${TOOL_CALL_OPEN}" ${CALL_RULE} "${TOOL_CALL_CLOSE}"`;
  lines.push(`root ::= ${call}${parallel ? ` ( ${call} )*` : ''}`);
  return lines.join('\n');
}

/** A call as read from the answer, before it gets its id. */
export type ReadCall = Omit<ToolCall, 'id'>;

/** What the end of an answer held: the calls, or (none read) text still to send as content. */
export interface ReadEnd {
  calls: ReadCall[] | null;
  /** Held text that turned out to be content (no tag, or calls that do not parse). */
  text: string;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads tool calls out of an answer's text as it streams. `push` returns the text to send now:
 * all of it until a tag may be starting (the tail that could begin `<tool_call>` waits for the
 * next piece), nothing after a tag. `finish` parses what was held.
 */
export class ToolCallReader {
  private held = '';
  private calling = false;

  /** `forced`: the answer is calls only; an unfinished one is dropped, never shown as text. */
  constructor(private readonly toolNames: ReadonlySet<string>, private readonly parallel: boolean, private readonly forced = false) {}

  push(text: string): string {
    if (this.calling) {
      this.held += text;
      return '';
    }
    const pending = this.held + text;
    const at = pending.indexOf(TOOL_CALL_OPEN);
    if (at !== -1) {
      this.calling = true;
      this.held = pending.slice(at);
      return pending.slice(0, at);
    }
    // The longest tail that could be the start of a tag waits.
    let keep = Math.min(pending.length, TOOL_CALL_OPEN.length - 1);
    while (keep > 0 && !TOOL_CALL_OPEN.startsWith(pending.slice(pending.length - keep))) keep--;
    this.held = pending.slice(pending.length - keep);
    return pending.slice(0, pending.length - keep);
  }

  /**
   * The calls the held text makes: tagged calls one after another (whitespace between them), each
   * `{"name", "arguments"}` naming an offered tool, with object arguments. When `cut` (the answer
   * hit its token limit), an unfinished last call is dropped; otherwise anything else makes the
   * whole held text content (a forced answer's is dropped: it holds calls or nothing). Without
   * `parallel`, only the first call counts.
   */
  finish(cut: boolean): ReadEnd {
    const held = this.held;
    this.held = '';
    const none: ReadEnd = { calls: null, text: this.forced ? '' : held };
    if (!this.calling) return none;
    const calls: ReadCall[] = [];
    let rest = held;
    while (rest.startsWith(TOOL_CALL_OPEN)) {
      const call = this.firstCall(rest);
      if (!call) break;
      calls.push(call.call);
      rest = rest.slice(call.length).trimStart();
    }
    const unfinished = rest !== '' && (TOOL_CALL_OPEN.startsWith(rest) || rest.startsWith(TOOL_CALL_OPEN));
    if (calls.length === 0 || (rest !== '' && !(cut && unfinished))) return none;
    return { calls: this.parallel ? calls : calls.slice(0, 1), text: '' };
  }

  /** The call `text` opens with and its length, or null when it does not parse as one. */
  private firstCall(text: string): { call: ReadCall; length: number } | null {
    // The first closing tag after which the body parses: an argument string may hold the tag itself.
    for (let close = text.indexOf(TOOL_CALL_CLOSE); close !== -1; close = text.indexOf(TOOL_CALL_CLOSE, close + 1)) {
      const body = text.slice(TOOL_CALL_OPEN.length, close);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        continue;
      }
      if (!isObject(parsed) || typeof parsed.name !== 'string' || !this.toolNames.has(parsed.name) || !isObject(parsed.arguments)) return null;
      return { call: { name: parsed.name, arguments: argumentsText(body, parsed.name, parsed.arguments) }, length: close + TOOL_CALL_CLOSE.length };
    }
    return null;
  }
}

/**
 * The arguments as the model wrote them when the call has `callText`'s layout (so that a history
 * holding the call renders to the same text), else their compact JSON.
 */
function argumentsText(body: string, name: string, args: Record<string, unknown>): string {
  const head = `${BEFORE_NAME}${JSON.stringify(name)}${BEFORE_ARGUMENTS}`;
  if (body.startsWith(head) && body.endsWith(AFTER_ARGUMENTS)) {
    const raw = body.slice(head.length, -AFTER_ARGUMENTS.length);
    try {
      if (JSON.stringify(JSON.parse(raw)) === JSON.stringify(args)) return raw;
    } catch {
      // not the layout after all
    }
  }
  return JSON.stringify(args);
}
