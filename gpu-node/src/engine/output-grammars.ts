/**
 * Grammars for structured outputs: what holds an answer to a JSON object (`json_object`) or to a
 * JSON Schema, built by node-llama-cpp's JSON-schema grammar builder and tightened here. The job's format was
 * parsed with the shared `outputFormatSchema`, which admits only keywords this grammar enforces.
 * Building one costs milliseconds, so the grammars of the formats seen last are kept: a client
 * sends the same schema with every request.
 */
import { ANY_OBJECT_SCHEMA, DEFINITION_CONTAINERS, definitionName, InvalidRequestError, isUnicodeText, MAX_INTEGER_DIGITS, SCHEMA_ANNOTATIONS, schemaLiterals, SUBSCHEMA_KEYS, SUBSCHEMA_LIST_KEYS, SUBSCHEMA_MAP_KEYS } from '@bamba/shared';
import { LlamaGrammarEvaluationState, type GbnfJsonSchema, type LlamaGrammar, type LlamaModel } from 'node-llama-cpp';
import type { AnswerGrammar } from './engine.js';
import { TOOL_CALL_CLOSE, TOOL_CALL_OPEN, toolCallsGrammar } from './tool-call-syntax.js';

/** Distinct formats whose grammars are kept. */
const KEPT_GRAMMARS = 32;


const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A checked schema as node-llama-cpp reads it: `anyOf` becomes its `oneOf` (the grammar of
 * either is "one of these"; the check refuses `oneOf` itself), draft-07's `definitions` its
 * `$defs` (references with them), a one-type array its type, and annotations are dropped.
 */
export function grammarSchemaOf(schema: Record<string, unknown>): GbnfJsonSchema {
  const convert = (node: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if ((SCHEMA_ANNOTATIONS as readonly string[]).includes(key)) continue;
      const name = key === 'anyOf' ? 'oneOf' : (DEFINITION_CONTAINERS as readonly string[]).includes(key) ? '$defs' : key;
      if ((SUBSCHEMA_KEYS as readonly string[]).includes(key) && isObject(value)) out[name] = convert(value);
      else if ((SUBSCHEMA_LIST_KEYS as readonly string[]).includes(key) && Array.isArray(value)) out[name] = value.map((child) => convert(child as Record<string, unknown>));
      else if ((SUBSCHEMA_MAP_KEYS as readonly string[]).includes(key) && isObject(value)) out[name] = Object.fromEntries(Object.entries(value).map(([child, sub]) => [child, convert(sub as Record<string, unknown>)]));
      else if (key === 'type' && Array.isArray(value) && value.length === 1) out[name] = value[0];
      else if (key === '$ref' && typeof value === 'string' && definitionName(value) !== null) out[name] = `#/$defs/${definitionName(value)}`;
      else out[name] = value;
    }
    return out;
  };
  return convert(schema) as GbnfJsonSchema;
}


/**
 * Rules of node-llama-cpp's generated grammar (3.21) that we replace. Its root ends with four or
 * more newlines (its chat session's stop trigger): ours ends at the value, so the answer stops
 * there. Its integers may carry an exponent (`5e-3` is no integer, `1e99999` no finite number),
 * and its numbers' exponents may have 16 digits: integers get none and at most
 * `MAX_INTEGER_DIGITS` digits (safe integers, which the schema check relies on), numbers an
 * exponent of two digits at most (every such number is a finite double). Its strings may use
 * `\u` escapes, which count as one character each: ours write characters only.
 */
const ROOT_TAIL = ' "\\n\\n\\n\\n" [\\n]*';
const REPLACED_RULES: Record<string, string> = {
  'integer-number-rule': `"-"? ("0" | [1-9] [0-9]{0,${MAX_INTEGER_DIGITS - 1}})`,
  'fractional-number-rule': '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? ("0" | [1-9] [0-9]?))?',
  // No `\u` escapes: a string's length in the grammar is then its length in characters (an
  // escaped surrogate pair counted two), and no lone surrogate can be written.
  'string-char-rule': '[^"\\\\\\x7F\\x00-\\x1F] | "\\\\" ["\\\\/bfnrt]',
};

/** The generated grammar with the rules above replaced; throws when it does not look as expected. */
export function tightenedGrammar(gbnf: string): string {
  let rootFound = false;
  const lines = gbnf.split('\n').map((line) => {
    const at = line.indexOf(' ::= ');
    const name = at === -1 ? undefined : line.slice(0, at);
    const definition = at === -1 ? undefined : line.slice(at + ' ::= '.length);
    if (name === 'root' && definition !== undefined) {
      if (!definition.endsWith(ROOT_TAIL)) throw new Error(`unexpected root rule from the JSON-schema grammar builder: ${line.slice(0, 200)}`);
      rootFound = true;
      return `root ::= ${definition.slice(0, -ROOT_TAIL.length)}`;
    }
    return name !== undefined && name in REPLACED_RULES && definition !== undefined ? `${name} ::= ${REPLACED_RULES[name]}` : line;
  });
  if (!rootFound) throw new Error('the JSON-schema grammar builder made no root rule');
  return lines.join('\n');
}

/** Where a request put what its grammar is made of, as a refusal names it. */
export function grammarSourceOf(format: AnswerGrammar): { param: 'tools' | 'response_format'; what: string } {
  return format.type === 'tool_calls'
    ? { param: 'tools', what: "the tools' names and parameters" }
    : { param: 'response_format', what: "the response format's schema" };
}

export class OutputGrammars {
  /** Most recently used last. */
  private readonly kept = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly model: LlamaModel) {}

  /** A fresh evaluation state (one per answer) of the format's grammar. */
  async stateFor(format: AnswerGrammar): Promise<LlamaGrammarEvaluationState> {
    const key = JSON.stringify(format);
    const grammar = this.kept.get(key) ?? this.build(format);
    this.kept.delete(key);
    this.kept.set(key, grammar);
    for (const oldest of this.kept.keys()) {
      if (this.kept.size <= KEPT_GRAMMARS) break;
      this.kept.delete(oldest);
    }
    try {
      return new LlamaGrammarEvaluationState({ model: this.model, grammar: await grammar });
    } catch (error) {
      this.kept.delete(key);
      throw error;
    }
  }

  private build(format: AnswerGrammar): Promise<LlamaGrammar> {
    const llama = this.model.llama;
    const { param, what } = grammarSourceOf(format);
    const built = (async () => {
      // A literal the model has no tokens for would leave the grammar with nothing to sample: as
      // the grammar writes it, quoted and escaped.
      const writable = (text: string) => this.model.detokenize(this.model.tokenize(text)) === text;
      const literals = format.type === 'json_object' ? [] : [
        ...schemaLiterals(format.schema).map((text) => ({ text, written: JSON.stringify(text) })),
        ...(format.type === 'tool_calls' ? [TOOL_CALL_OPEN, TOOL_CALL_CLOSE].map((tag) => ({ text: tag, written: tag })) : []),
      ];
      // Text only: an unpaired surrogate (refused upstream too) leaves the grammar a character no token writes.
      const unwritable = literals.find((literal) => !isUnicodeText(literal.text) || !writable(literal.written))?.text;
      if (unwritable !== undefined) throw new InvalidRequestError(`model ${this.model.fileInfo.metadata.general?.name ?? ''} cannot write '${unwritable.slice(0, 80)}' (a property name, enum or const string of ${what})`, { param, code: 'invalid_value' });
      let generated: LlamaGrammar;
      try {
        generated = await llama.createGrammarForJsonSchema<GbnfJsonSchema>(format.type === 'json_object' ? ANY_OBJECT_SCHEMA : grammarSchemaOf(format.schema));
      } catch (error) {
        // The checks upstream admit only what the builder knows; should one still fail, the schema is at fault.
        throw new InvalidRequestError(`${what} could not be turned into a grammar (a definition that refers to itself before writing anything, say): ${(error as Error).message}`, { param, code: 'invalid_value' });
      }
      const tightened = tightenedGrammar(generated.grammar);
      return llama.createGrammar({ grammar: format.type === 'tool_calls' ? toolCallsGrammar(tightened, format.parallel) : tightened });
    })();
    built.catch(() => {}); // awaited by stateFor; a failure is reported there
    return built;
  }
}
