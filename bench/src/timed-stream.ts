/** A streaming request timed the way every case times one: until its first text, then to its end. */
export interface TimedStream {
  /** Milliseconds from sending until the first chunk holding `textMarker` arrived. */
  ttftMs: number;
  /** The `x-bamba-resume` header ('?' when absent). */
  resume: string;
  /** The whole SSE body. */
  body: string;
}

/** POST `body` with `stream: true` to `baseUrl + path` and read the stream to its end. Throws unless 200. */
export async function timedStream(baseUrl: string, path: string, body: object, textMarker: string, headers: Record<string, string> = {}): Promise<TimedStream> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ ...body, stream: true }) });
  if (response.status !== 200) throw new Error(`${path} failed: ${response.status} ${await response.text()}`);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let ttftMs = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (ttftMs === 0 && text.includes(textMarker)) ttftMs = performance.now() - started;
  }
  return { ttftMs, resume: response.headers.get('x-bamba-resume') ?? '?', body: text };
}
