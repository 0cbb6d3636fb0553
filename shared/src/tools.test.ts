import { describe, expect, it } from 'vitest';
import { jsonSchemaProblem } from './output-format.js';
import { callSchemaOf, forcedToolsProblem, type Tool } from './tools.js';

const tree: Tool = {
  name: 'tree',
  parameters: {
    type: 'object',
    properties: { root: { $ref: '#/definitions/node' } },
    required: ['root'],
    additionalProperties: false,
    definitions: { node: { type: 'object', properties: { label: { type: 'string' }, children: { type: 'array', items: { $ref: '#/definitions/node' } } }, required: ['label', 'children'], additionalProperties: false } },
  },
};
const list: Tool = { name: 'list', parameters: { type: 'object', properties: { item: { $ref: '#/$defs/node' } }, $defs: { node: { type: 'string' } } } };

describe('callSchemaOf', () => {
  it('makes one call object per tool, told apart by the name, with every tool\'s definitions at the root under its own name', () => {
    const schema = callSchemaOf([tree, list, { name: 'free' }]);
    expect(schema).toEqual({
      anyOf: [
        { type: 'object', properties: { name: { const: 'tree' }, arguments: { type: 'object', properties: { root: { $ref: '#/$defs/tree.node' } }, required: ['root'], additionalProperties: false } }, required: ['name', 'arguments'], additionalProperties: false },
        { type: 'object', properties: { name: { const: 'list' }, arguments: { type: 'object', properties: { item: { $ref: '#/$defs/list.node' } } } }, required: ['name', 'arguments'], additionalProperties: false },
        { type: 'object', properties: { name: { const: 'free' }, arguments: { type: 'object', additionalProperties: true } }, required: ['name', 'arguments'], additionalProperties: false },
      ],
      $defs: {
        'tree.node': { type: 'object', properties: { label: { type: 'string' }, children: { type: 'array', items: { $ref: '#/$defs/tree.node' } } }, required: ['label', 'children'], additionalProperties: false },
        'list.node': { type: 'string' },
      },
    });
    expect(jsonSchemaProblem(schema)).toBeNull();
  });

  it('leaves a literal that looks like a reference alone (only schema positions are renamed)', () => {
    const schema = callSchemaOf([{ name: 'f', parameters: { type: 'object', properties: { kind: { const: '#/$defs/x' }, tag: { enum: ['#/definitions/y'] } } } }]);
    expect(schema).toMatchObject({ properties: { arguments: { properties: { kind: { const: '#/$defs/x' }, tag: { enum: ['#/definitions/y'] } } } } });
  });
});

describe('forcedToolsProblem', () => {
  it('names the tool and the keyword a grammar cannot hold', () => {
    expect(forcedToolsProblem([list, { name: 'g', parameters: { type: 'object', properties: { code: { type: 'string', pattern: 'x' } } } }]))
      .toMatchObject({ toolIndex: 1, path: ['properties', 'code', 'pattern'] });
  });

  it('bounds the tools together: each may fit alone and not all of them at once', () => {
    const wide = (name: string): Tool => ({ name, parameters: { type: 'object', properties: Object.fromEntries(Array.from({ length: 120 }, (_, index) => [`p${index}`, { type: 'string' }])) } });
    expect(forcedToolsProblem([wide('a')])).toBeNull();
    expect(forcedToolsProblem([wide('a'), wide('b'), wide('c'), wide('d'), wide('e')])).toMatchObject({ toolIndex: null, message: expect.stringMatching(/together: .*more than 500 subschemas/) });
  });
});
