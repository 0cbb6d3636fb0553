/**
 * Turns chat messages into tokens the way the model's template lays them out, with message
 * content always tokenized as plain text. The template is rendered with a sentinel in place of
 * each message's content; the template's own text (role markers, end-of-turn markers) is
 * tokenized with special tokens on, and each content as text, so `<|start_of_role|>system` typed
 * by a user is a run of characters, never a forged turn.
 *
 * A tool call's arguments are content too (a sentinel in their place; the model generated them as
 * text). The tools, and a call's name and id, are the template's to lay out (it writes them as
 * JSON): template text, so one that holds the text of a control token is refused rather than let
 * it forge one. Whether the template renders tools and calls at all is found once, at load: a
 * request with tools or calls to a model whose template drops them is refused, never answered
 * without them.
 *
 * Every content is tokenized once (an LRU of recent contents serves the prompt, the turn
 * boundaries and the snapshot boundary of the same request), so the work is linear in the
 * conversation's length; turn boundaries are probed for the last few messages only.
 */
import { randomBytes } from 'node:crypto';
import { InternalInvariantError, InvalidRequestError, type Tool } from '@bamba/shared';
import type { ChatTemplate } from './chat-template.js';
import type { ChatTemplateMessage } from './engine.js';

/** Characters of content remembered (with their tokens) across calls: a request's history is tokenized once. */
const CONTENT_CACHE_CHARACTERS = 2_000_000;
const TEMPLATE_CACHE_CHARACTERS = 64_000;

type Tokenize = (text: string, specialTokens: boolean) => number[];
/** Whether text holds the text of a control token (a role marker, end of text). */
type HoldsControlText = (text: string) => boolean;

/** A Map used as an LRU bounded by the total length of its keys: the oldest goes first. */
class Lru<V> {
  private readonly entries = new Map<string, V>();
  private characters = 0;
  constructor(private readonly capacityCharacters: number) {}
  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    if (key.length > this.capacityCharacters) return; // too big to keep: tokenized again if it comes back
    this.entries.set(key, value);
    this.characters += key.length;
    for (const oldest of this.entries.keys()) {
      if (this.characters <= this.capacityCharacters) break;
      this.entries.delete(oldest);
      this.characters -= oldest.length;
    }
  }
}

/**
 * Add `source` to the end of `target`. A loop, not push(...source): a long message's hundreds of
 * thousands of tokens as arguments overflow the stack.
 */
function append(target: number[], source: readonly number[]): void {
  for (const token of source) target.push(token);
}

export class ChatTokenizer {
  /** Private-use characters with a per-process nonce: no content can contain it by accident. */
  private readonly sentinel: RegExp;
  private readonly sentinelFor: (index: number) => string;
  private readonly contentTokens = new Lru<number[]>(CONTENT_CACHE_CHARACTERS);
  private readonly templateTokens = new Lru<number[]>(TEMPLATE_CACHE_CHARACTERS);
  /** Tool texts found free of control text (a client sends the same tools with every request). */
  private readonly checkedToolTexts = new Lru<true>(TEMPLATE_CACHE_CHARACTERS);

  /** What the template renders of tool use (found once, by rendering a probe). */
  private readonly renders: { tools: boolean; calls: boolean };

  constructor(private readonly template: ChatTemplate, private readonly tokenize: Tokenize, private readonly holdsControlText: HoldsControlText) {
    const nonce = randomBytes(6).toString('hex');
    this.sentinelFor = (index) => `\uE000${nonce}:${index}\uE001`;
    this.sentinel = new RegExp(`\\uE000${nonce}:(\\d+)\\uE001`, 'g');
    this.renders = this.probeToolUse(nonce);
  }

  /** The conversation's tokens, ending with the assistant's cue when `addGenerationPrompt`. */
  tokenizeChat(messages: readonly ChatTemplateMessage[], addGenerationPrompt: boolean, tools?: readonly Tool[]): number[] {
    if (tools && tools.length > 0) {
      if (!this.renders.tools) throw new InvalidRequestError("this model's chat template does not show tools to the model; send the request without tools", { param: 'tools', code: 'unsupported_parameter' });
      this.assertPlain(JSON.stringify(tools), 'tools');
    }
    // Contents and call arguments, in the order a template writes them: each is tokenized as text.
    const plain: string[] = [];
    const placed = messages.map((message, index) => {
      if (message.toolCalls && !this.renders.calls) throw new InvalidRequestError("this model's chat template does not show a history's tool calls to the model", { param: `messages[${index}].tool_calls`, code: 'unsupported_parameter' });
      if (message.toolCallId) this.assertPlain(message.toolCallId, `messages[${index}].tool_call_id`);
      const content = this.sentinelFor(plain.push(message.content) - 1);
      const toolCalls = message.toolCalls?.map((call) => {
        this.assertPlain(call.id + call.name, `messages[${index}].tool_calls`);
        return { ...call, arguments: this.sentinelFor(plain.push(call.arguments) - 1) };
      });
      return { ...message, content, ...(toolCalls ? { toolCalls } : {}) };
    });
    const rendered = this.template.render(placed, addGenerationPrompt, tools);
    const tokens: number[] = [];
    const seen = new Set<number>();
    let at = 0;
    for (const match of rendered.matchAll(this.sentinel)) {
      const index = Number(match[1]);
      if (seen.has(index) || index >= plain.length) throw new InternalInvariantError('the chat template repeats a message content or call; cannot tokenize it as text');
      seen.add(index);
      append(tokens, this.templateText(rendered.slice(at, match.index)));
      append(tokens, this.content(plain[index]!));
      at = match.index + match[0].length;
    }
    if (seen.size !== plain.length) throw new InternalInvariantError('the chat template drops message contents or call arguments; cannot tokenize them as text');
    append(tokens, this.templateText(rendered.slice(at)));
    return tokens;
  }

  /** Whether the template renders a request's tools, and a history's calls (their arguments). */
  private probeToolUse(nonce: string): { tools: boolean; calls: boolean } {
    const probe = (messages: ChatTemplateMessage[], tools: Tool[] | undefined, mark: string) => {
      try {
        return this.template.render(messages, false, tools).includes(mark);
      } catch {
        return false; // a template that refuses these (raise_exception) does not render them
      }
    };
    const toolName = `probe_${nonce}`;
    const argumentsMark = `{"probe": "${nonce}"}`;
    return {
      tools: probe([{ role: 'user', content: 'x' }], [{ name: toolName }], toolName),
      calls: probe([{ role: 'user', content: 'x' }, { role: 'assistant', content: '', toolCalls: [{ id: `call_${nonce}`, name: toolName, arguments: argumentsMark }] }], undefined, argumentsMark),
    };
  }

  /**
   * Token sequences of the conversation's first k messages (no assistant cue), for the last
   * `limit` values of k below the whole conversation, longest first: where turn snapshots may
   * have been taken.
   */
  boundaries(messages: readonly ChatTemplateMessage[], limit: number, tools?: readonly Tool[]): number[][] {
    const found: number[][] = [];
    for (let count = messages.length - 1; count >= 1 && found.length < limit; count--) found.push(this.tokenizeChat(messages.slice(0, count), false, tools));
    return found;
  }

  /** Refuses template text from a request that holds a control token's text. */
  private assertPlain(text: string, param: string): void {
    if (this.checkedToolTexts.get(text)) return;
    if (this.holdsControlText(text)) throw new InvalidRequestError(`${param} holds the text of one of the model's control tokens (a role or end-of-text marker), which tools and tool calls may not`, { param, code: 'invalid_value' });
    this.checkedToolTexts.set(text, true);
  }

  /** The template's own text: role markers and the like become their special tokens. */
  private templateText(text: string): number[] {
    return this.cached(this.templateTokens, text, true);
  }

  /** A message's content: always plain text. */
  private content(text: string): number[] {
    return this.cached(this.contentTokens, text, false);
  }

  private cached(cache: Lru<number[]>, text: string, specialTokens: boolean): number[] {
    if (text === '') return [];
    let tokens = cache.get(text);
    if (!tokens) {
      tokens = this.tokenize(text, specialTokens);
      cache.set(text, tokens);
    }
    return tokens;
  }
}
