/** The stream body's keep-alive comments: during silences only, never inside an event, never after the end. */
import { SSE_END_COMMENT } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { SSE_KEEP_ALIVE_COMMENT, sseBody } from './sse-body.js';

const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything the body sends, as one text. */
async function readAll(body: ReadableStream<Uint8Array>): Promise<string> {
  let text = '';
  for await (const chunk of body) text += decoder.decode(chunk, { stream: true });
  return text;
}

describe('sseBody keep-alive', () => {
  it('sends comments while produce is silent, between whole events, and none after the end', async () => {
    const body = sseBody({ slowClientMs: 5_000, sseKeepAliveMs: 20 }, () => {}, async (write) => {
      await write('data: one\n\n');
      await sleep(150); // a long prompt evaluated, a choice waiting for a slot
      await write('data: two\n\n');
    });
    const text = await readAll(body);
    expect(text.startsWith('data: one\n\n')).toBe(true);
    expect(text.endsWith(`data: two\n\n${SSE_END_COMMENT}`)).toBe(true);
    const between = text.slice('data: one\n\n'.length, -`data: two\n\n${SSE_END_COMMENT}`.length);
    // ~150 ms of silence at a 20 ms interval: several comments, and nothing else.
    expect(between.length).toBeGreaterThan(0);
    expect(between.split(SSE_KEEP_ALIVE_COMMENT).every((rest) => rest === '')).toBe(true);
  });

  it('sends none when the interval is 0', async () => {
    const body = sseBody({ slowClientMs: 5_000, sseKeepAliveMs: 0 }, () => {}, async (write) => {
      await sleep(60);
      await write('data: one\n\n');
    });
    expect(await readAll(body)).toBe(`data: one\n\n${SSE_END_COMMENT}`);
  });

  it('a client that stopped reading during a silence is found by the comments and cut', async () => {
    let slow = 0;
    let produceEnded = false;
    const body = sseBody({ slowClientMs: 100, sseKeepAliveMs: 10 }, () => { slow += 1; }, async (write) => {
      // Silent until the cut: produce learns of it at its next write.
      while (slow === 0) await sleep(10);
      await expect(write('data: late\n\n')).rejects.toThrow();
      produceEnded = true;
    });
    // Never read: the comments fill the stream's queue, then one is not taken within 100 ms.
    void body;
    for (let waited = 0; !produceEnded && waited < 5_000; waited += 20) await sleep(20);
    expect(slow).toBe(1);
    expect(produceEnded).toBe(true);
  });
});
