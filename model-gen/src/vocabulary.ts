/**
 * The generated models' tokenizer: a GPT-2-style byte-level BPE vocabulary with no merges, so
 * every token is exactly one printable ASCII character (plus tab, newline and space). A
 * generated answer therefore re-tokenizes to the same tokens, which keeps re-sent histories on
 * the exact token sequence their snapshots were taken at. Chat-template role markers are
 * control tokens; `<|end_of_text|>` is end-of-sequence (Granite's own names).
 */

/** Token types from llama.cpp (`llama_token_type`). */
const TokenType = { normal: 1, control: 3, unused: 5 } as const;

export const SPECIAL_TOKENS = {
  endOfText: '<|end_of_text|>',
  startOfRole: '<|start_of_role|>',
  endOfRole: '<|end_of_role|>',
} as const;

/**
 * Granite-style chat template. No whitespace between messages, so rendering the first k
 * messages yields an exact prefix of rendering all of them (what the prefix cache relies on).
 * Tools, when a request offers them, are listed first as JSON in a turn of their own; an
 * assistant's tool calls follow its content, each `<tool_call>{"name": …, "arguments": …}</tool_call>`
 * (Granite 4's tags; the gpu-node's `tool-call-syntax.ts` reads and writes calls in exactly this
 * layout); a tool's answer is a `tool` turn.
 */
export const CHAT_TEMPLATE =
  "{%- if tools %}<|start_of_role|>available_tools<|end_of_role|>{{ tools | tojson }}<|end_of_text|>{%- endif %}" +
  "{%- for message in messages %}<|start_of_role|>{{ message['role'] }}<|end_of_role|>{{ message['content'] }}" +
  "{%- if message['tool_calls'] %}{%- for call in message['tool_calls'] %}<tool_call>{\"name\": {{ call['function']['name'] | tojson }}, \"arguments\": {{ call['function']['arguments'] }}}</tool_call>{%- endfor %}{%- endif %}" +
  '<|end_of_text|>{%- endfor %}' +
  '{%- if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>{%- endif %}';

/** GPT-2's byte-to-unicode map for one byte (printable bytes map to themselves). */
function byteToUnicode(byte: number): string {
  const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  if (printable) return String.fromCharCode(byte);
  let shifted = 0;
  for (let other = 0; other < byte; other++) {
    const otherPrintable = (other >= 0x21 && other <= 0x7e) || (other >= 0xa1 && other <= 0xac) || (other >= 0xae && other <= 0xff);
    if (!otherPrintable) shifted++;
  }
  return String.fromCharCode(256 + shifted);
}

export interface Vocabulary {
  tokens: string[];
  tokenTypes: number[];
  eosTokenId: number;
  /** Ids of the plain-text tokens (one character each). */
  textTokenCount: number;
  /** Tokens before the padding (special and text): ids from here on are unused fillers. */
  usedTokenCount: number;
}

/**
 * Build the vocabulary, padded with unused filler tokens to `paddedSize` (a 9B-shaped model
 * needs a 128k-row embedding; fillers are never produced by the tokenizer).
 */
export function buildVocabulary(paddedSize = 0): Vocabulary {
  const tokens: string[] = [SPECIAL_TOKENS.endOfText, SPECIAL_TOKENS.startOfRole, SPECIAL_TOKENS.endOfRole];
  const tokenTypes: number[] = [TokenType.control, TokenType.control, TokenType.control];
  const textBytes = [0x09, 0x0a, 0x20];
  for (let byte = 0x21; byte <= 0x7e; byte++) textBytes.push(byte);
  for (const byte of textBytes) {
    tokens.push(byteToUnicode(byte));
    tokenTypes.push(TokenType.normal);
  }
  const textTokenCount = textBytes.length;
  const usedTokenCount = tokens.length;
  for (let filler = 0; tokens.length < paddedSize; filler++) {
    tokens.push(`<|unused_${filler}|>`);
    tokenTypes.push(TokenType.unused);
  }
  return { tokens, tokenTypes, eosTokenId: 0, textTokenCount, usedTokenCount };
}
