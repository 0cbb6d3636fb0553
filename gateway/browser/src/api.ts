/**
 * Calls to the gateway from the pages: the stored key goes along as a bearer token, errors come
 * back as `ApiError` with OpenAI's error fields, and streamed answers are read as SSE events.
 */

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code: string | null) {
    super(message);
  }
}

/** Where a key lives in the browser's storage (never in the HTML). */
export interface KeyStore {
  get(): string | null;
  set(key: string | null): void;
}

export function storedKey(name: string): KeyStore {
  return {
    get: () => localStorage.getItem(name),
    set: (key) => (key ? localStorage.setItem(name, key) : localStorage.removeItem(name)),
  };
}

async function errorOf(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let code: string | null = null;
  try {
    const body: unknown = await response.json();
    const error = typeof body === 'object' && body !== null ? (body as { error?: { message?: unknown; code?: unknown } }).error : undefined;
    if (typeof error?.message === 'string') message = error.message;
    if (typeof error?.code === 'string') code = error.code;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, message, code);
}

/** Fetch a gateway path; a non-2xx answer throws `ApiError`. */
export async function call(keys: KeyStore, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = keys.get();
  if (key) headers.set('Authorization', `Bearer ${key}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const response = await fetch(path, { ...init, headers, body });
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** The JSON payloads of an SSE body, in order, until `[DONE]` or the end. */
export async function* sseData(response: Response): AsyncGenerator<unknown> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    let end: number;
    while ((end = pending.indexOf('\n\n')) !== -1) {
      const event = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = event.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n');
      if (data === '') continue;
      if (data === '[DONE]') return;
      yield JSON.parse(data) as unknown;
    }
  }
}
