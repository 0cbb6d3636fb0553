import type { BatchItem, ChatMessage } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { sharedPrefixes } from './shared-prefixes.js';

const item = (line: number, messages: ChatMessage[], model = 'm'): BatchItem => ({
  line,
  customId: `r${line}`,
  request: { model, input: { kind: 'chat', messages }, endpoint: 'chat', sessionId: null, stream: false, includeUsage: false, maxTokensRequested: false, params: {} as never } as unknown as BatchItem['request'],
});
const system: ChatMessage = { role: 'system', content: 'Shared instructions, long enough to be worth evaluating only once per batch.' };
const shot: ChatMessage[] = [{ role: 'user', content: 'example q' }, { role: 'assistant', content: 'example a' }];

describe('sharedPrefixes', () => {
  it('finds the longest prefix requests share at a message boundary, once', () => {
    const items = [1, 2, 3].map((line) => item(line, [system, ...shot, { role: 'user', content: `question ${line}` }]));
    expect(sharedPrefixes(items)).toMatchObject([{ model: 'm', messages: [system, ...shot], requests: 3 }]);
  });

  it('keeps models apart and ignores a prefix only one request has', () => {
    const items = [item(1, [system, { role: 'user', content: 'a' }], 'm'), item(2, [system, { role: 'user', content: 'b' }], 'other'), item(3, [{ role: 'system', content: 'alone' }, { role: 'user', content: 'c' }])];
    expect(sharedPrefixes(items)).toEqual([]);
  });

  it('gives each request its own longest shared prefix', () => {
    const deeper: ChatMessage[] = [system, ...shot, { role: 'user', content: 'follow-up' }, { role: 'assistant', content: 'answer' }];
    const items = [item(1, [...deeper, { role: 'user', content: 'x' }]), item(2, [...deeper, { role: 'user', content: 'y' }]), item(3, [system, { role: 'user', content: 'z' }]), item(4, [system, { role: 'user', content: 'w' }])];
    expect(sharedPrefixes(items)).toMatchObject([{ model: 'm', messages: deeper, requests: 2 }, { model: 'm', messages: [system], requests: 2 }]);
  });

  it('seeds nothing for a short prefix, and names each prefix the same way every time', () => {
    const short: ChatMessage = { role: 'system', content: 'Be brief.' };
    expect(sharedPrefixes([item(1, [short, { role: 'user', content: 'a' }]), item(2, [short, { role: 'user', content: 'b' }])])).toEqual([]);
    const items = [1, 2].map((line) => item(line, [system, { role: 'user', content: `q${line}` }]));
    expect(sharedPrefixes(items)[0]!.key).toBe(sharedPrefixes([...items].reverse())[0]!.key);
  });
});
