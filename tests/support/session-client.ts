/** Thin helpers for the sessions API in end-to-end tests. */
import type { ChatTemplateMessage } from '@bamba/gpu-node';
import { MODEL_ID, postJson, type TestStack } from './stack.js';

export interface TurnResult {
  status: number;
  json: Record<string, any>;
  text: string;
  resume: string | null;
  cachedTokens: number;
  requestId: string;
}

export function sessionClient(url: string, apiKey?: string) {
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const request = async (method: string, path: string) => {
    const response = await fetch(`${url}${path}`, { method, headers });
    return { status: response.status, json: (await response.json()) as Record<string, any> };
  };
  return {
    async create(system?: string) {
      const response = await postJson(`${url}/v1/sessions`, { model: MODEL_ID, ...(system ? { system } : {}) }, headers);
      if (response.status !== 201) throw new Error(`create session: ${response.status} ${response.text}`);
      return response.json.id as string;
    },
    get: (sessionId: string) => request('GET', `/v1/sessions/${sessionId}`),
    delete: (sessionId: string) => request('DELETE', `/v1/sessions/${sessionId}`),
    fork: (sessionId: string, body: unknown = {}) => postJson(`${url}/v1/sessions/${sessionId}/fork`, body, headers),
    async chat(body: Record<string, unknown>): Promise<TurnResult> {
      const response = await postJson(`${url}/v1/chat/completions`, { model: MODEL_ID, temperature: 0, max_tokens: 24, ...body }, headers);
      return {
        status: response.status,
        json: response.json,
        text: response.json?.choices?.[0]?.message?.content ?? '',
        resume: response.headers.get('x-bamba-resume'),
        cachedTokens: response.json?.usage?.prompt_tokens_details?.cached_tokens ?? -1,
        requestId: response.json?.id ?? '',
      };
    },
    turn(sessionId: string, content: string, extra: Record<string, unknown> = {}) {
      return this.chat({ session_id: sessionId, messages: [{ role: 'user', content }], ...extra });
    },
  };
}

/** A session's committed history as the engine renders it: role and content (entries also carry item ids). */
export async function historyOf(stack: TestStack, sessionId: string): Promise<ChatTemplateMessage[]> {
  const transcript = await stack.redis.lrange(stack.keys.sessionTranscript(sessionId), 0, -1);
  return transcript.map((entry) => {
    const { role, content } = JSON.parse(entry) as ChatTemplateMessage;
    return { role, content };
  });
}
