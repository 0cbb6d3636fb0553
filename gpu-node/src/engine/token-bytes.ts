/**
 * The bytes each token stands for, read from the model's vocabulary (what a log probability entry
 * shows as `bytes`, and its `token` decodes from). Decoding a token alone through the engine
 * would lose them: a token holding part of a UTF-8 character decodes to U+FFFD, and SentencePiece
 * vocabularies drop a leading space. Byte-level BPE vocabularies (`gpt2`, Bamba's and Granite's)
 * spell each byte as one character of GPT-2's byte alphabet; SentencePiece ones (`llama`) spell
 * a space as U+2581 and a raw byte as `<0xHH>`. Control and user-defined tokens are spelled as
 * their text in both. Other tokenizers fall back to the engine's text.
 */

/** GPT-2's byte alphabet read backwards: printable bytes are themselves, the rest 256 + n in order. */
function gpt2ByteOfCharacter(): Map<number, number> {
  const printable = (byte: number) => (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const table = new Map<number, number>();
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) table.set(printable(byte) ? byte : 256 + shifted++, byte);
  return table;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });
const SPM_SPACE = /\u2581/g;
const SPM_BYTE = /^<0x([0-9A-Fa-f]{2})>$/;
/** llama.cpp's token types (`tokenizer.ggml.token_type`) spelled as plain text. */
const AS_TEXT_TYPES = new Set([3 /* control */, 4 /* user-defined */]);

export class TokenBytes {
  private readonly known = new Map<number, { bytes: number[]; text: string }>();
  private readonly gpt2: Map<number, number> | null;

  constructor(
    /** `tokenizer.ggml.model`. */
    private readonly tokenizer: string | undefined,
    /** `tokenizer.ggml.tokens`, when the model has them. */
    private readonly vocabulary: readonly string[] | undefined,
    /** `tokenizer.ggml.token_type`, when the model has them. */
    private readonly types: readonly number[] | undefined,
    /** The engine's own text of one token, for tokenizers read no other way. */
    private readonly fallbackText: (token: number) => string,
  ) {
    this.gpt2 = tokenizer === 'gpt2' ? gpt2ByteOfCharacter() : null;
  }

  /** The token's bytes and their text (U+FFFD where they are part of a character). */
  of(token: number): { bytes: number[]; text: string } {
    let found = this.known.get(token);
    if (!found) {
      const bytes = this.read(token);
      found = { bytes, text: decoder.decode(Uint8Array.from(bytes)) };
      this.known.set(token, found);
    }
    return found;
  }

  private read(token: number): number[] {
    const spelled = this.vocabulary?.[token];
    if (typeof spelled !== 'string') return [...encoder.encode(this.fallbackText(token))];
    if (AS_TEXT_TYPES.has(this.types?.[token] ?? 1)) return [...encoder.encode(spelled)];
    if (this.gpt2) {
      const bytes: number[] = [];
      for (const character of spelled) {
        const byte = this.gpt2.get(character.codePointAt(0)!);
        if (byte !== undefined) bytes.push(byte);
        else bytes.push(...encoder.encode(character));
      }
      return bytes;
    }
    if (this.tokenizer === 'llama') {
      const raw = SPM_BYTE.exec(spelled);
      return raw ? [Number.parseInt(raw[1]!, 16)] : [...encoder.encode(spelled.replace(SPM_SPACE, ' '))];
    }
    return [...encoder.encode(this.fallbackText(token))];
  }
}
