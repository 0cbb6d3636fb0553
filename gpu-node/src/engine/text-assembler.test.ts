import { describe, expect, it } from 'vitest';
import { TextAssembler, type Detokenize } from './text-assembler.js';

/** A byte-level vocabulary: token n is byte n. Incomplete UTF-8 decodes with U+FFFD, as llama.cpp does. */
const bytes: Detokenize = (tokens) => new TextDecoder('utf-8', { fatal: false }).decode(new Uint8Array(tokens));
const tokensOf = (text: string) => [...new TextEncoder().encode(text)];

/** Run a scripted sequence: the text released token by token, then what `finish` releases. */
function run(text: string, stop: string[] = []) {
  const assembler = new TextAssembler(stop, bytes);
  let released = '';
  let stopped = false;
  for (const token of tokensOf(text)) {
    const piece = assembler.push(token);
    released += piece.text;
    if (piece.stopped) { stopped = true; break; }
  }
  return { released, stopped, finished: released + assembler.finish() };
}

describe('TextAssembler', () => {
  it('releases text held for a possible stop string when generation ends without it (EOS or max_tokens)', () => {
    const result = run('hello ab', ['abc']);
    expect(result.released).toBe('hello '); // "ab" might have become "abc"
    expect(result.finished).toBe('hello ab');
  });

  it('cuts at a stop string and releases nothing after it', () => {
    const result = run('say abc and more', ['abc']);
    expect(result.stopped).toBe(true);
    expect(result.finished).toBe('say ');
  });

  it('holds the bytes of a split UTF-8 character until it is complete, and releases an incomplete one at the end', () => {
    const assembler = new TextAssembler([], bytes);
    const [first, second] = tokensOf('é');
    expect(assembler.push(first!).text).toBe('');
    expect(assembler.push(second!).text).toBe('é');
    const cut = new TextAssembler([], bytes);
    cut.push(tokensOf('€')[0]!); // generation ends in the middle of a 3-byte character
    expect(cut.finish()).toBe('\uFFFD');
  });

  it('at the end releases held stop-string text and an incomplete character together, in order', () => {
    const assembler = new TextAssembler(['x€'], bytes);
    let released = '';
    for (const token of tokensOf('ax')) released += assembler.push(token).text;
    released += assembler.push(tokensOf('€')[0]!).text; // one byte of three, then generation ends
    expect(released).toBe('a'); // "x" may start the stop string; the byte waits for its character
    expect(assembler.finish()).toBe('x\uFFFD');
  });
});
