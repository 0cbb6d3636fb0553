import { describe, expect, it } from 'vitest';
import { jsonSchemaProblem, MAX_SCHEMA_DEPTH, outputFormatSchema, schemaLiterals } from './output-format.js';

const problemAt = (schema: unknown) => {
  const problem = jsonSchemaProblem(schema);
  return problem && { at: problem.path.join('.'), message: problem.message };
};

describe('jsonSchemaProblem', () => {
  it('accepts the keywords the grammar enforces, annotations, $defs in scope, recursion', () => {
    expect(problemAt({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'A tree',
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 20 },
        at: { type: 'string', format: 'time' },
        size: { type: ['integer', 'null'] },
        kind: { enum: ['a', 'b', 1, null] },
        fixed: { const: 'x' },
        children: { type: 'array', items: { $ref: '#/$defs/node' }, minItems: 0, maxItems: 4 },
        pair: { type: 'array', prefixItems: [{ type: 'number' }, { type: 'boolean' }], maxItems: 2 },
        either: { anyOf: [{ type: 'null' }, { $ref: '#/$defs/node' }] },
        extra: { type: 'object', additionalProperties: { type: 'string' }, maxProperties: 3 },
      },
      required: ['name'],
      additionalProperties: false,
      $defs: { node: { type: 'object', properties: { child: { anyOf: [{ type: 'null' }, { $ref: '#/$defs/node' }] } }, description: 'recursive' } },
    })).toBeNull();
  });

  it('names the first keyword it could not enforce, and where', () => {
    expect(problemAt({ type: 'object', properties: { a: { type: 'string', pattern: 'x' } } })).toMatchObject({ at: 'properties.a.pattern', message: expect.stringContaining("'pattern' is not supported") });
    expect(problemAt({ type: 'number', minimum: 0 })).toMatchObject({ at: 'minimum' });
    expect(problemAt({ type: 'integer', minimum: 0 })).toMatchObject({ at: 'minimum', message: expect.stringContaining('cannot enforce bounds') });
    expect(problemAt({ type: 'integer', exclusiveMaximum: 10 ** 15 - 1 })).toMatchObject({ at: 'exclusiveMaximum' });
    expect(problemAt({ type: 'integer', maximum: '9' })).toMatchObject({ at: 'maximum' });
    expect(problemAt({ type: 'array', items: { type: 'string' }, uniqueItems: true })).toMatchObject({ at: 'uniqueItems' });
    expect(problemAt({ allOf: [{ type: 'string' }] })).toMatchObject({ at: 'allOf', message: expect.stringContaining("'allOf' is not supported") });
    expect(problemAt({ properties: { a: { type: 'string' } } })).toMatchObject({ at: 'type', message: expect.stringContaining('\'properties\' needs "type": "object"') });
    expect(problemAt({ description: 'only words' })).toMatchObject({ at: '', message: expect.stringContaining('needs a type') });
    expect(problemAt({ type: 'string', format: 'email' })).toMatchObject({ at: 'format' });
    expect(problemAt({ type: 'string', format: 'date' })).toMatchObject({ at: 'format' }); // the grammar would write 2023-02-31
    expect(problemAt({ oneOf: [{ type: 'number' }, { type: 'integer' }] })).toMatchObject({ at: 'oneOf', message: expect.stringContaining('use anyOf') });
    expect(problemAt({ const: 5, type: 'string' })).toMatchObject({ at: 'type', message: '5 is not of type string' });
    expect(problemAt({ enum: ['a', 1], type: 'string' })).toMatchObject({ at: 'type' });
    expect(problemAt({ enum: ['a'], type: 'bogus' })).toMatchObject({ at: 'type' });
    expect(problemAt({ enum: [1, null], type: ['integer', 'null'] })).toBeNull();
    expect(problemAt({ type: 'object', minProperties: 2 })).toMatchObject({ at: 'minProperties' });
    expect(problemAt({ type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: { type: 'string' } })).toMatchObject({ at: 'additionalProperties' });
    expect(problemAt({ type: 'object', additionalProperties: { type: 'null' }, minProperties: 2 })).toMatchObject({ at: 'minProperties' });
    expect(problemAt({ type: 'object', additionalProperties: { type: 'null' }, minProperties: 1, maxProperties: 4 })).toBeNull();
    expect(problemAt({ type: 'object', properties: {}, required: ['constructor'] })).toMatchObject({ at: 'required' });
    expect(problemAt({ type: 'object', properties: { 'a\u0001': { type: 'null' } } })).toMatchObject({ message: expect.stringContaining('control characters') });
    expect(problemAt({ const: 'x\bq' })).toMatchObject({ at: 'const', message: expect.stringContaining('control characters') });
    expect(problemAt({ type: 'string', maxLength: 501 })).toMatchObject({ at: 'maxLength', message: expect.stringContaining('at most 500') });
    expect(problemAt({ type: 'array', minItems: 1500 })).toMatchObject({ at: 'minItems' });
    expect(problemAt({ enum: Array.from({ length: 1001 }, (_, index) => index) })).toMatchObject({ at: 'enum', message: expect.stringContaining('1000 enum values') });
    expect(problemAt({ type: 'object', properties: { a: { enum: ['x'.repeat(8000)] }, b: { enum: ['y'.repeat(8000)] } } })).toMatchObject({ message: expect.stringContaining('15000 characters') });
    expect(problemAt({ type: 'string', format: 'time', maxLength: 3 })).toMatchObject({ at: 'format' });
    expect(problemAt({ type: 'string', minLength: 3, maxLength: 2 })).toMatchObject({ at: 'maxLength' });
    expect(problemAt({ type: 'string', maxLength: -1 })).toMatchObject({ at: 'maxLength' });
    expect(problemAt({ type: ['object', 'null'] })).toMatchObject({ at: 'type', message: expect.stringContaining('anyOf') });
    expect(problemAt({ type: [] })).toMatchObject({ at: 'type' });
    expect(problemAt({ type: 'date' })).toMatchObject({ at: 'type' });
    expect(problemAt({ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] })).toMatchObject({ at: 'required' });
    expect(problemAt({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'string' } }, maxProperties: 1 })).toMatchObject({ at: 'maxProperties' });
    expect(problemAt({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'string' }], maxItems: 1 })).toMatchObject({ at: 'maxItems' });
    expect(problemAt({ $ref: '#/$defs/missing' })).toMatchObject({ at: '$ref' });
    expect(problemAt({ $ref: 'https://example.com/schema' })).toMatchObject({ at: '$ref' });
    // draft-07's definitions (what zodResponseFormat writes) work as $defs do; one of the two, at the root.
    expect(problemAt({ type: 'object', properties: { a: { $ref: '#/definitions/a' } }, definitions: { a: { type: 'string' } } })).toBeNull();
    expect(problemAt({ type: 'object', properties: { a: { $ref: '#/$defs/a' } }, definitions: { a: { type: 'string' } } })).toMatchObject({ at: 'properties.a.$ref', message: expect.stringContaining('#/definitions/') });
    expect(problemAt({ $defs: { a: { type: 'string' } }, definitions: { b: { type: 'string' } }, $ref: '#/$defs/a' })).toMatchObject({ at: 'definitions', message: expect.stringContaining('not both') });
    expect(problemAt({ type: 'object', properties: { a: { type: 'object', definitions: {} } } })).toMatchObject({ at: 'properties.a.definitions' });
    expect(problemAt({ definitions: { n: { type: 'object', properties: { next: { $ref: '#/definitions/n' } } } }, $ref: '#/definitions/n' })).toMatchObject({ at: 'definitions.n' });
    expect(problemAt({ anyOf: [] })).toMatchObject({ at: 'anyOf' });
    expect(problemAt({ anyOf: [{ type: 'string' }], type: 'string' })).toMatchObject({ at: 'type' });
    expect(problemAt({ enum: [{ a: 1 }] })).toMatchObject({ at: 'enum' });
    expect(problemAt({ const: [1] })).toMatchObject({ at: 'const' });
    expect(problemAt({ type: 'object', properties: { a: 'string' } })).toMatchObject({ at: 'properties.a', message: 'a schema must be a JSON object' });
    // '#/$defs/x' points from the root: definitions live there only.
    expect(problemAt({ type: 'object', properties: { a: { $defs: { x: { type: 'string' } }, $ref: '#/$defs/x' } }, $defs: { x: { type: 'integer' } } })).toMatchObject({ at: 'properties.a.$defs' });
    // Alternatives that start alike (the grammar would keep both open, doubling with each level).
    expect(problemAt({ anyOf: [{ type: 'array', maxItems: 1 }, { type: 'array', maxItems: 2 }] })).toMatchObject({ at: 'anyOf', message: expect.stringContaining('can both be an array') });
    expect(problemAt({ type: ['integer', 'number'] })).toMatchObject({ at: 'type', message: expect.stringContaining('can both be a number') });
    expect(problemAt({ anyOf: [{ type: 'string', maxLength: 3 }, { $ref: '#/$defs/s' }], $defs: { s: { type: 'string' } } })).toMatchObject({ at: 'anyOf', message: expect.stringContaining('a string') });
    // Literals end within their own length: const and enum alternatives may share a kind (zod's union of literals).
    expect(problemAt({ anyOf: [{ type: 'string', const: 'a' }, { type: 'string', const: 'b' }, { type: 'string' }] })).toBeNull();
    // A one-type list is its type, for alternatives as for everything else.
    const self = { anyOf: [{ type: 'null' }, { type: ['object'], properties: { k: { $ref: '#/$defs/R' } } }, { type: ['object'], properties: { k: { $ref: '#/$defs/R' } } }] };
    expect(problemAt({ $defs: { R: self }, $ref: '#/$defs/R' })).toMatchObject({ at: '$defs.R.anyOf' });
    expect(problemAt({ $defs: { A: { type: ['object'], properties: { a: { $ref: '#/$defs/A' } } } }, $ref: '#/$defs/A' })).toMatchObject({ at: '$defs.A' });
    expect(problemAt({ $defs: { A: { type: ['array'], prefixItems: [{ $ref: '#/$defs/A' }] } }, $ref: '#/$defs/A' })).toMatchObject({ at: '$defs.A' });
    // An object with extra keys starts like any object: it shares an anyOf with none.
    expect(problemAt({ $defs: { R: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: { $ref: '#/$defs/R' } }, { type: 'object', properties: { k: { $ref: '#/$defs/R' } }, required: ['k'] }] } }, $ref: '#/$defs/R' }))
      .toMatchObject({ at: '$defs.R.anyOf', message: expect.stringContaining('extra keys') });
    expect(problemAt({ $ref: '#' })).toMatchObject({ at: '$ref', message: expect.stringContaining('whole schema') });
    expect(problemAt({ anyOf: [{ type: 'object' }, { type: 'array' }, { type: 'string' }, { type: 'integer' }, { type: 'boolean' }, { type: 'null' }] })).toBeNull();
    // Objects are told apart by their first property: its name, or its const/enum values.
    const shape = (first: string, value: unknown) => ({ type: 'object', properties: { [first]: value, rest: { type: 'string' } } });
    expect(problemAt({ anyOf: [shape('kind', { const: 'circle' }), shape('kind', { enum: ['square', 'rect'] })] })).toBeNull();
    expect(problemAt({ anyOf: [shape('user', { type: 'string' }), shape('address', { type: 'string' })] })).toBeNull();
    expect(problemAt({ anyOf: [shape('kind', { const: 'a' }), shape('kind', { enum: ['a', 'b'] })] })).toMatchObject({ at: 'anyOf', message: expect.stringContaining("first property 'kind' with a value in common") });
    expect(problemAt({ anyOf: [shape('kind', { type: 'string' }), shape('kind', { const: 'a' })] })).toMatchObject({ at: 'anyOf' });
    expect(problemAt({ anyOf: [{ type: 'object' }, { type: 'object', additionalProperties: true }] })).toMatchObject({ at: 'anyOf' });
    // A definition that always contains itself: no answer could end.
    expect(problemAt({ $defs: { n: { type: 'object', properties: { v: { type: 'null' }, next: { $ref: '#/$defs/n' } } } }, $ref: '#/$defs/n' })).toMatchObject({ at: '$defs.n', message: expect.stringContaining('always contains itself') });
    expect(problemAt({ $defs: { a: { type: 'array', items: { $ref: '#/$defs/a' }, minItems: 1 } }, $ref: '#/$defs/a' })).toMatchObject({ at: '$defs.a' });
    expect(problemAt({ $defs: { a: { type: 'array', items: { $ref: '#/$defs/a' } } }, $ref: '#/$defs/a' })).toBeNull(); // it may be empty
    expect(problemAt({ const: Number.POSITIVE_INFINITY })).toMatchObject({ at: 'const' });
  });

  it("accepts the schema openai's zodResponseFormat writes for a typical zod object (bounds of .int() included)", () => {
    expect(problemAt({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: {
        steps: { type: 'array', items: { type: 'object', properties: { explanation: { type: 'string' } }, required: ['explanation'], additionalProperties: false } },
        note: { type: ['string', 'null'] },
        kind: { type: 'string', enum: ['a', 'b'] },
        n: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
      },
      required: ['steps', 'note', 'kind', 'n'],
      additionalProperties: false,
    })).toBeNull();
  });

  it('finds how alternatives start in time linear in the schema, however its definitions refer to each other', () => {
    // Each definition refers to the next twice: following references anew would take 2^40 steps
    // (this test would then run past vitest's limit instead of answering at once).
    const defs = Object.fromEntries(Array.from({ length: 40 }, (_, index) => [`d${index}`, index === 39 ? { type: 'null' } : { anyOf: [{ $ref: `#/$defs/d${index + 1}` }, { $ref: `#/$defs/d${index + 1}` }] }]));
    expect(problemAt({ $defs: defs, $ref: '#/$defs/d0' })).toMatchObject({ at: '$defs.d0.anyOf' });
  });

  it('bounds depth and size before the grammar is built', () => {
    let deep: Record<string, unknown> = { type: 'string' };
    for (let level = 0; level <= MAX_SCHEMA_DEPTH; level++) deep = { type: 'array', items: deep };
    expect(problemAt(deep)?.message).toContain('deeper than');
    const wide = { type: 'object', properties: Object.fromEntries(Array.from({ length: 3000 }, (_, index) => [`p${index}`, { type: 'null' }])) };
    expect(problemAt(wide)?.message).toContain('more than');
  });

  it('lists the strings the grammar writes verbatim', () => {
    expect(schemaLiterals({ type: 'object', description: 'not this', properties: { name: { const: 'n' }, kind: { enum: ['a', 1, 'b'] } }, $defs: { d: { type: 'object', properties: { deep: { type: 'null' } } } } }).sort())
      .toEqual(['a', 'b', 'deep', 'kind', 'n', 'name']);
  });

  it('is the check a job is parsed with', () => {
    expect(outputFormatSchema.safeParse({ type: 'json_schema', schema: { type: 'integer', maximum: 3 } }).success).toBe(false);
    expect(outputFormatSchema.safeParse({ type: 'json_schema', schema: { type: 'integer' } }).success).toBe(true);
    expect(outputFormatSchema.safeParse({ type: 'json_object' }).success).toBe(true);
  });
});
