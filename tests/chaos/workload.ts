/**
 * Traffic for the reliability campaigns: clients that run session turns and stateless requests
 * against a stack (streaming and not) and record what they saw, so a campaign can check it
 * against what Redis committed and against a replay of each conversation.
 */
import type { ChatTemplateMessage } from '@bamba/gpu-node';
import { MODEL_ID, readSse, type TestStack } from '../support/stack.js';

/** One request as a client saw it. */
export interface Outcome {
  kind: 'turn' | 'stateless';
  streaming: boolean;
  /** HTTP status, or 0 when the client gave up waiting (it hung). */
  status: number;
  /** The answer's text when it completed (its first choice's, when it asked for several). */
  text: string | null;
  /** Every choice's text, when the request asked for `n` > 1 and it completed. */
  choiceTexts?: string[];
  /** The error code the client got (HTTP error or a final SSE error event). */
  errorCode: string | null;
  requestId: string | null;
  /** For session turns: the session and the user message sent. */
  sessionId?: string;
  content?: string;
  /** For stateless chat requests: the messages sent. */
  messages?: ChatTemplateMessage[];
  /** For stateless legacy completions: the prompts sent (choice i answers prompt i). */
  prompts?: string[];
  hung: boolean;
}

export interface WorkloadOptions {
  maxTokens: number;
  /** A client waiting longer than this for a response counts it as hung. */
  clientTimeoutMs: number;
}

/** Send one chat request (or, with `path`, a legacy completion); never throws: every way it can end is an outcome. */
export async function chat(stack: TestStack, body: Record<string, unknown>, streaming: boolean, options: WorkloadOptions, path = '/v1/chat/completions'): Promise<Omit<Outcome, 'kind'>> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.clientTimeoutMs);
  try {
    const response = await fetch(`${stack.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      signal: controller.signal,
      body: JSON.stringify({ model: MODEL_ID, max_tokens: options.maxTokens, temperature: 0, ...body, stream: streaming }),
    });
    const requestId = response.headers.get('x-request-id');
    /** Every choice's text, when there are several (the first is also `text`). */
    const choiceTextsOf = (texts: string[]) => (texts.length > 1 ? { choiceTexts: texts } : {});
    if (!streaming) {
      const json = (await response.json()) as { choices?: Array<{ index: number; message?: { content: string }; text?: string }>; error?: { code: string | null } };
      if (!response.ok) return { streaming, status: response.status, text: null, errorCode: json.error?.code ?? null, requestId, hung: false };
      const texts = json.choices!.map((choice) => choice.message?.content ?? choice.text ?? '');
      return { streaming, status: response.status, text: texts[0]!, ...choiceTextsOf(texts), errorCode: null, requestId, hung: false };
    }
    if (!response.ok) {
      const json = (await response.json()) as { error?: { code: string | null } };
      return { streaming, status: response.status, text: null, errorCode: json.error?.code ?? null, requestId, hung: false };
    }
    const events = await readSse(response);
    const chunks = events.filter((event) => event !== '[DONE]').map((event) => JSON.parse(event) as { id?: string; error?: { code: string | null }; choices?: Array<{ index: number; delta?: { content?: string }; text?: string }> });
    const failure = chunks.find((chunk) => chunk.error);
    // The choices' chunks interleave: each text is its own index's deltas.
    const texts: string[] = [];
    for (const choice of chunks.flatMap((chunk) => chunk.choices ?? [])) texts[choice.index] = (texts[choice.index] ?? '') + (choice.delta?.content ?? choice.text ?? '');
    const complete = !failure && events.at(-1) === '[DONE]';
    return { streaming, status: 200, text: complete ? texts[0] ?? '' : null, ...(complete ? choiceTextsOf(texts) : {}), errorCode: failure?.error?.code ?? (events.at(-1) === '[DONE]' ? null : 'stream_cut'), requestId, hung: false };
  } catch (error) {
    const hung = controller.signal.aborted;
    return { streaming, status: 0, text: null, errorCode: hung ? 'client_timeout' : `fetch_failed: ${(error as Error).message}`, requestId: null, hung };
  } finally {
    clearTimeout(timer);
  }
}

/** Create a session, retrying while the region cannot take it yet. */
export async function createSession(stack: TestStack, until: () => boolean): Promise<string | null> {
  while (!until()) {
    try {
      const response = await fetch(`${stack.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID }) });
      if (response.status === 201) return ((await response.json()) as { id: string }).id;
    } catch { /* the gateway is fine; a node may be restarting */ }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return null;
}

/**
 * A client that keeps one session going until `until()`: a turn after the other (streaming
 * every other), waiting and sending the same turn again while the session is busy (a retried
 * turn may still hold it), a new session after `turnsPerSession`.
 */
export async function sessionClient(stack: TestStack, index: number, until: () => boolean, outcomes: Outcome[], options: WorkloadOptions & { turnsPerSession: number }): Promise<void> {
  let sessionId = await createSession(stack, until);
  let turn = 0;
  while (sessionId && !until()) {
    const content = `client ${index}, turn ${turn}: go on`;
    const streaming = turn % 2 === 1;
    const result = await chat(stack, { session_id: sessionId, messages: [{ role: 'user', content }] }, streaming, options);
    if (result.status === 409 || (result.status === 503 && result.errorCode === 'no_gpu_node')) {
      await new Promise((resolve) => setTimeout(resolve, 200)); // busy or no node for a moment: the same turn again
      continue;
    }
    outcomes.push({ kind: 'turn', sessionId, content, ...result });
    // A turn that failed may still commit (a retry on another node): a new session keeps the check simple.
    if (result.text === null || ++turn >= options.turnsPerSession) {
      sessionId = await createSession(stack, until);
      turn = 0;
    }
  }
}

/**
 * A client that sends stateless requests (streaming every other) until `until()`: chats, every
 * third for two answers; every fifth a legacy completion of two prompts.
 */
export async function statelessClient(stack: TestStack, index: number, until: () => boolean, outcomes: Outcome[], options: WorkloadOptions): Promise<void> {
  for (let request = 0; !until(); request++) {
    const streaming = request % 2 === 1;
    const ask = request % 5 === 4
      // Greedy: each choice is its prompt's replay.
      ? { prompts: [0, 1].map((prompt) => `stateless client ${index}, request ${request}, prompt ${prompt}:`) }
      : { messages: [{ role: 'user' as const, content: `stateless client ${index}, request ${request}` }] };
    const result = 'prompts' in ask
      ? await chat(stack, { prompt: ask.prompts }, streaming, options, '/v1/completions')
      // Every third asks for two answers (greedy: both are the replay's).
      : await chat(stack, { messages: ask.messages, ...(request % 3 === 2 ? { n: 2 } : {}) }, streaming, options);
    if (result.status === 503 && result.errorCode === 'no_gpu_node') {
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    outcomes.push({ kind: 'stateless', ...ask, ...result });
  }
}
