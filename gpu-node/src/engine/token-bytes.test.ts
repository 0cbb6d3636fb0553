/** Token bytes from a vocabulary's spelling (the vocabularies are the point, so they are made up here). */
import { describe, expect, it } from 'vitest';
import { TokenBytes } from './token-bytes.js';

const noFallback = () => { throw new Error('not read through the engine'); };

describe('TokenBytes', () => {
  it('reads byte-level BPE (gpt2) spellings back into bytes, a part of a character included', () => {
    // GPT-2's alphabet: a space is Ġ (256 + 32), 'é' is the two bytes Ã (0xC3) and © (0xA9).
    const bytes = new TokenBytes('gpt2', ['Ġthe', 'Ã', '©', 'ĠcafÃ©', '<|end_of_text|>', '<|é|>'], [1, 1, 1, 1, 3, 4], noFallback);
    expect(bytes.of(0)).toEqual({ bytes: [0x20, 0x74, 0x68, 0x65], text: ' the' });
    expect(bytes.of(1)).toEqual({ bytes: [0xc3], text: '\ufffd' });
    expect(bytes.of(2)).toEqual({ bytes: [0xa9], text: '\ufffd' });
    expect(bytes.of(3)).toEqual({ bytes: [0x20, 0x63, 0x61, 0x66, 0xc3, 0xa9], text: ' café' });
    // Control and user-defined tokens are spelled as their text (é is no byte of the alphabet here).
    expect(bytes.of(4).text).toBe('<|end_of_text|>');
    expect(bytes.of(5)).toEqual({ bytes: [...Buffer.from('<|é|>')], text: '<|é|>' });
  });

  it('reads SentencePiece (llama) spellings: ▁ is a space, <0xHH> a raw byte', () => {
    const bytes = new TokenBytes('llama', ['▁the', '<0xE4>', 'ing'], undefined, noFallback);
    expect(bytes.of(0)).toEqual({ bytes: [0x20, 0x74, 0x68, 0x65], text: ' the' });
    expect(bytes.of(1)).toEqual({ bytes: [0xe4], text: '\ufffd' });
    expect(bytes.of(2).text).toBe('ing');
  });

  it('falls back to the engine’s text for other tokenizers and tokens beyond the list', () => {
    const bytes = new TokenBytes('bert', ['x'], undefined, (token) => `#${token}`);
    expect(bytes.of(0)).toEqual({ bytes: [0x23, 0x30], text: '#0' });
    expect(new TokenBytes('gpt2', [], undefined, (token) => `#${token}`).of(5).text).toBe('#5');
  });
});
