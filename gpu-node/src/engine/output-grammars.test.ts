import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';
import { grammarSchemaOf, tightenedGrammar } from './output-grammars.js';

describe('grammarSchemaOf', () => {
  it('reads anyOf as oneOf, a one-type array as its type, and drops annotations, at every depth', () => {
    expect(grammarSchemaOf({
      title: 't',
      type: 'object',
      properties: { a: { anyOf: [{ type: ['string'], description: 'd' }, { type: 'null' }] }, title: { type: 'string' } },
      $defs: { x: { type: 'array', items: { type: ['integer'], examples: [1] } } },
    })).toEqual({
      type: 'object',
      properties: { a: { oneOf: [{ type: 'string' }, { type: 'null' }] }, title: { type: 'string' } },
      $defs: { x: { type: 'array', items: { type: 'integer' } } },
    });
  });
});

describe('grammarSchemaOf with draft-07 definitions (what zodResponseFormat writes)', () => {
  it('reads definitions as $defs, and references into them', () => {
    expect(grammarSchemaOf({ type: 'object', properties: { n: { $ref: '#/definitions/Named' } }, definitions: { Named: { type: 'array', items: { $ref: '#/definitions/Named' } } } }))
      .toEqual({ type: 'object', properties: { n: { $ref: '#/$defs/Named' } }, $defs: { Named: { type: 'array', items: { $ref: '#/$defs/Named' } } } });
  });
});

describe('tightenedGrammar', () => {
  it('ends the root at the value and keeps numbers finite, integers without exponents', () => {
    const generated = [
      'root ::= "{" ws "\\"a\\"" ":" integer-number-rule "}" "\\n\\n\\n\\n" [\\n]*',
      'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
      'string-char-rule ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" ["\\\\/bfnrt] | "\\\\u" [0-9a-fA-F]{4}',
      'rule0 ::= "\\"x ::= y\\""',
    ].join('\n');
    expect(tightenedGrammar(generated).split('\n')).toEqual([
      'root ::= "{" ws "\\"a\\"" ":" integer-number-rule "}"',
      'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,14})',
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? ("0" | [1-9] [0-9]?))?',
      'string-char-rule ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" ["\\\\/bfnrt]',
      'rule0 ::= "\\"x ::= y\\""',
    ]);
  });

  it('refuses a grammar that does not look as the pinned builder makes it', () => {
    expect(() => tightenedGrammar('root ::= "{" "}"')).toThrow(/unexpected root rule/);
    expect(() => tightenedGrammar('value ::= "x"')).toThrow(/no root rule/);
  });

  it('finds the rules it replaces in the grammar the pinned node-llama-cpp builds', async () => {
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    const built = await llama.createGrammarForJsonSchema({ type: 'object', properties: { s: { type: 'string' }, i: { type: 'integer' }, n: { type: 'number' } } });
    const before = built.grammar;
    const after = tightenedGrammar(before);
    expect(before).toContain('"\\\\u"');
    expect(after).not.toContain('"\\\\u"'); // no \u escapes
    expect(after.split('\n').find((line) => line.startsWith('integer-number-rule ::= '))).not.toMatch(/eE/);
    expect(after.split('\n').find((line) => line.startsWith('fractional-number-rule ::= '))).toMatch(/\[eE\] \[-\+\]\? \("0" \| \[1-9\] \[0-9\]\?\)\)\?$/);
    expect(after.split('\n').find((line) => line.startsWith('root ::= '))).toMatch(/"}"$/);
  });
});
