import { callSchemaOf, type Tool } from '@bamba/shared';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';
import { grammarSchemaOf, tightenedGrammar } from './output-grammars.js';
import { callText, ToolCallReader, toolCallsGrammar } from './tool-call-syntax.js';

const weather: Tool = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } };
const time: Tool = { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } };

describe('ToolCallReader', () => {
  const reader = (parallel = true) => new ToolCallReader(new Set(['get_weather', 'get_time']), parallel);

  it('passes text through, holding back only a tail that could open a tag', () => {
    const read = reader();
    expect(read.push('Hello <to')).toBe('Hello ');
    expect(read.push('day')).toBe('<today');
    expect(read.push(' a < b')).toBe(' a < b');
    expect(read.push(' <tool')).toBe(' ');
    expect(read.finish(false)).toEqual({ calls: null, text: '<tool' });
  });

  it('reads calls split across pieces, keeping arguments as written in the canonical layout', () => {
    const read = reader();
    const text = `Let me look.${callText('get_weather', '{"city": "Paris"}')}\n${callText('get_time', '{"zone":"CET"}')}`;
    let released = '';
    for (let at = 0; at < text.length; at += 3) released += read.push(text.slice(at, at + 3));
    expect(released).toBe('Let me look.');
    expect(read.finish(false)).toEqual({ calls: [{ name: 'get_weather', arguments: '{"city": "Paris"}' }, { name: 'get_time', arguments: '{"zone":"CET"}' }], text: '' });
  });

  it('takes another layout of the call object, with compact arguments', () => {
    const read = reader();
    read.push('<tool_call>\n{ "arguments": {"city" : "Oslo"}, "name": "get_weather" }\n</tool_call>');
    expect(read.finish(false)).toEqual({ calls: [{ name: 'get_weather', arguments: '{"city":"Oslo"}' }], text: '' });
  });

  it('finds the closing tag after which the call parses (an argument may hold the tag)', () => {
    const read = reader();
    read.push(callText('get_weather', '{"city": "</tool_call>"}'));
    expect(read.finish(false).calls).toEqual([{ name: 'get_weather', arguments: '{"city": "</tool_call>"}' }]);
  });

  it('gives back everything as content when a call names no offered tool, or does not parse, or text follows', () => {
    for (const held of [callText('rm_rf', '{}'), '<tool_call>{"name": "get_weather", "arguments": {"city": }</tool_call>', `${callText('get_time', '{}')} and more`, '<tool_call>{"name": "get_time", "arguments": "{}"}</tool_call>']) {
      const read = reader();
      expect(read.push(`a${held}`)).toBe('a');
      expect(read.finish(false)).toEqual({ calls: null, text: held });
    }
  });

  it('drops an unfinished last call only when the token limit cut the answer', () => {
    const unfinished = `${callText('get_time', '{}')}<tool_call>{"name": "get_wea`;
    const cut = reader();
    cut.push(unfinished);
    expect(cut.finish(true)).toEqual({ calls: [{ name: 'get_time', arguments: '{}' }], text: '' });
    const stopped = reader();
    stopped.push(unfinished);
    expect(stopped.finish(false)).toEqual({ calls: null, text: unfinished });
    const nothing = reader();
    nothing.push('<tool_call>{"name"');
    expect(nothing.finish(true)).toEqual({ calls: null, text: '<tool_call>{"name"' });
  });

  it('never shows a forced answer\'s markup as text: a cut call is dropped', () => {
    for (const written of ['<tool_ca', '<tool_call>{"name": "get_ti', `${callText('get_time', '{}')}<tool_call>{"na`]) {
      const forced = new ToolCallReader(new Set(['get_time']), true, true);
      expect(forced.push(written)).toBe('');
      expect(forced.finish(true)).toEqual({ calls: written.startsWith(callText('get_time', '{}')) ? [{ name: 'get_time', arguments: '{}' }] : null, text: '' });
    }
  });

  it('keeps the first call only when parallel calls are off', () => {
    const read = reader(false);
    read.push(callText('get_time', '{}') + callText('get_weather', '{"city": "Rome"}'));
    expect(read.finish(false).calls).toEqual([{ name: 'get_time', arguments: '{}' }]);
  });
});

describe('toolCallsGrammar over the pinned node-llama-cpp builder', () => {
  const grammarOf = async (tools: Tool[], parallel: boolean) => {
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    const built = await llama.createGrammarForJsonSchema(grammarSchemaOf(callSchemaOf(tools)));
    const text = toolCallsGrammar(tightenedGrammar(built.grammar), parallel);
    await llama.createGrammar({ grammar: text }); // llama.cpp parses it
    return text;
  };

  it('writes one tool\'s call object with the canonical spacing, inside the tags', async () => {
    const text = await grammarOf([weather], false);
    expect(text).toMatch(/^tool-call-object ::= "\{\\"name\\": " \S+ ", \\"arguments\\": " \S+ "\}"$/m);
    expect(text).toMatch(/^root ::= "<tool_call>" tool-call-object "<\/tool_call>"$/m);
  });

  it('fixes every alternative of several tools, and repeats calls when parallel', async () => {
    const text = await grammarOf([weather, time], true);
    expect(text).toMatch(/^tool-call-object ::= \( \S+ \| \S+ \)$/m);
    expect(text.match(/::= "\{\\"name\\": " \S+ ", \\"arguments\\": " \S+ "\}"$/gm)).toHaveLength(2);
    expect(text).toMatch(/^root ::= "<tool_call>" tool-call-object "<\/tool_call>" \( "<tool_call>" tool-call-object "<\/tool_call>" \)\*$/m);
  });

  it('builds one grammar of tools whose definitions moved to its root', async () => {
    const node = { type: 'object', properties: { label: { type: 'string' }, children: { type: 'array', items: { $ref: '#/definitions/node' } } }, required: ['label', 'children'], additionalProperties: false };
    const tree: Tool = { name: 'tree', parameters: { type: 'object', properties: { root: { $ref: '#/definitions/node' } }, definitions: { node } } };
    const list: Tool = { name: 'list', parameters: { type: 'object', properties: { item: { $ref: '#/$defs/node' } }, $defs: { node: { type: 'string' } } } };
    const text = await grammarOf([tree, list], false);
    expect(text.match(/::= "\{\\"name\\": " \S+ ", \\"arguments\\": " \S+ "\}"$/gm)).toHaveLength(2);
  });

  it('refuses a call grammar it does not recognise', () => {
    expect(() => toolCallsGrammar('root ::= "x"', false)).toThrow(/unexpected root rule/);
  });
});
