import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { discardRest, discardUnread, limitBody } from './body-limit.js';

function chunks(count: number, bytes: number, onCancel?: () => void): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < count) controller.enqueue(new Uint8Array(bytes));
      else controller.close();
    },
    cancel: onCancel,
  });
}

describe('discardRest', () => {
  it('reads a body to its end within the bounds', async () => {
    expect(await discardRest(chunks(100, 1000).getReader(), { maxBytes: 100_000, maxMs: 5_000 })).toBe(true);
  });

  it('stops past maxBytes, cancelling the body, and says it was cut', async () => {
    let cancelled = false;
    expect(await discardRest(chunks(100, 1000, () => { cancelled = true; }).getReader(), { maxBytes: 50_000, maxMs: 5_000 })).toBe(false);
    expect(cancelled).toBe(true);
  });

  it('stops after maxMs when the client stops sending', async () => {
    let cancelled = false;
    const stalled = new ReadableStream<Uint8Array>({ start(controller) { controller.enqueue(new Uint8Array(10)); }, cancel() { cancelled = true; } });
    expect(await discardRest(stalled.getReader(), { maxBytes: 1_000, maxMs: 50 })).toBe(false);
    expect(cancelled).toBe(true);
  });

  it('reports a broken body as cut', async () => {
    const broken = new ReadableStream<Uint8Array>({ pull(controller) { controller.error(new Error('connection reset')); } });
    expect(await discardRest(broken.getReader())).toBe(false);
  });
});

describe('discardUnread', () => {
  it('reads an unread body, leaves a read one alone, and does not start on one declared past the bound', async () => {
    expect(await discardUnread(new Request('http://x/', { method: 'POST', body: 'x'.repeat(100) }), { maxBytes: 1000, maxMs: 5_000 })).toBe(true);
    const read = new Request('http://x/', { method: 'POST', body: 'x' });
    await read.text();
    expect(await discardUnread(read)).toBe(true);
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({ pull(controller) { pulled += 1; controller.enqueue(new Uint8Array(100)); } });
    const declared = new Request('http://x/', { method: 'POST', body, duplex: 'half', headers: { 'content-length': '2000' } } as RequestInit);
    expect(await discardUnread(declared, { maxBytes: 1000, maxMs: 5_000 })).toBe(false);
    expect(pulled).toBeLessThanOrEqual(1);
  });
});

describe('limitBody', () => {
  const app = new Hono();
  app.onError((error, c) => c.json({ status: (error as { status?: number }).status ?? 500 }, ((error as { status?: number }).status ?? 500) as 413));
  app.post('/', limitBody(1000, { maxBytes: 5000, maxMs: 5_000 }), async (c) => c.json({ length: (await c.req.text()).length }));
  const chunked = (count: number) => ({ method: 'POST', body: chunks(count, 100), duplex: 'half' }) as RequestInit;

  it('passes a body within the limit to the route, with or without a length', async () => {
    expect(await (await app.request('/', { method: 'POST', body: 'x'.repeat(1000) })).json()).toEqual({ length: 1000 });
    expect(await (await app.request('/', chunked(10))).json()).toEqual({ length: 1000 });
  });

  it('refuses a declared length over the limit without reading the body', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({ pull(controller) { pulled += 1; controller.enqueue(new Uint8Array(100)); } });
    const response = await app.request('/', { method: 'POST', body, duplex: 'half', headers: { 'content-length': '1001' } } as RequestInit);
    expect(response.status).toBe(413);
    expect(pulled).toBeLessThanOrEqual(1); // a stream may pull once on its own
  });

  it('reads a chunked body over the limit to its end before the 413, and closes the connection past the bound', async () => {
    const drained = await app.request('/', chunked(40));
    expect([drained.status, drained.headers.get('connection')]).toEqual([413, null]);
    const cut = await app.request('/', chunked(100));
    expect([cut.status, cut.headers.get('connection')]).toEqual([413, 'close']);
  });
});
