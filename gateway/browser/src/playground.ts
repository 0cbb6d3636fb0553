/**
 * The playground (`GET /`): chat with streaming over server-side sessions, a sidebar of this
 * browser's sessions (create, switch, fork at any answer, delete), and under each answer how
 * its turn started (`x-bamba-resume`), cached tokens, time to first token, tokens/s and the
 * session's snapshot size after it. Everything goes through the public API.
 */
import { ApiError, call, sseData, storedKey } from './api.js';
import { byId, element } from './dom.js';
import { formatBytes, formatMs } from './format.js';
import { askForKey } from './key-dialog.js';

interface SavedSession {
  id: string;
  title: string;
  model: string;
}

/** How one answer's turn ran, measured here while it streamed. */
interface AnswerStats {
  resume: string;
  cachedTokens: number;
  ttftMs: number;
  tokensPerSecond: number | null;
  snapshotBytes: number;
}

interface SessionWire {
  id: string;
  model: string;
  turns: number;
  messages: Array<{ role: string; content: string }>;
  snapshot_bytes: number;
  /** Tokens the session's saved state covers. */
  token_count: number;
  state: string;
}

/** How long the page waits for a turn's saved state to land before showing its figures anyway. */
const STATE_LANDING_READS = 10;
const STATE_LANDING_PAUSE_MS = 100;

const keys = storedKey('bamba.apiKey');
const SESSIONS_KEY = 'bamba.sessions';
const CURRENT_KEY = 'bamba.currentSession';
const statsKey = (sessionId: string) => `bamba.stats.${sessionId}`;

const modelSelect = byId<HTMLSelectElement>('model');
const sessionList = byId<HTMLUListElement>('session-list');
const transcript = byId<HTMLOListElement>('transcript');
const announcer = byId<HTMLParagraphElement>('announce');
const errorBox = byId<HTMLDivElement>('error');
const composer = byId<HTMLFormElement>('composer');
const messageInput = byId<HTMLTextAreaElement>('message');
const maxTokensInput = byId<HTMLInputElement>('max-tokens');
const sendButton = byId<HTMLButtonElement>('send');
const sessionTitle = byId<HTMLHeadingElement>('session-title');
const systemField = byId<HTMLLabelElement>('system-field');
const systemInput = byId<HTMLInputElement>('system');

let current: SessionWire | null = null;
let busy = false;

function readJson<T>(key: string, fallback: T): T {
  try {
    const text = localStorage.getItem(key);
    return text ? (JSON.parse(text) as T) : fallback;
  } catch {
    return fallback;
  }
}

const savedSessions = (): SavedSession[] => readJson<SavedSession[]>(SESSIONS_KEY, []);
const saveSessions = (sessions: SavedSession[]) => localStorage.setItem(SESSIONS_KEY, JSON.stringify(sessions));
const statsOf = (sessionId: string): Record<string, AnswerStats> => readJson(statsKey(sessionId), {});
const saveStats = (sessionId: string, stats: Record<string, AnswerStats>) => localStorage.setItem(statsKey(sessionId), JSON.stringify(stats));

function showError(message: string | null): void {
  errorBox.textContent = message ?? '';
  errorBox.hidden = message === null;
}

/**
 * Run an API step; a 401 asks for a key and tries again, other errors are shown (and stay shown
 * until the next action clears them).
 */
async function withKey<T>(step: () => Promise<T>): Promise<T | null> {
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        if (await askForKey(keys, keys.get() ? 'That key was refused. Enter another API key.' : 'This server wants an API key.')) continue;
        showError('An API key is needed: use "API key" above.');
        return null;
      }
      showError(error instanceof Error ? error.message : String(error));
      return null;
    }
  }
}

async function loadModels(): Promise<void> {
  showError(null);
  const models = await withKey(async () => ((await (await call(keys, '/v1/models')).json()) as { data: Array<{ id: string }> }).data);
  if (!models) return;
  const chosen = modelSelect.value;
  modelSelect.replaceChildren(...models.map((model) => element('option', { text: model.id, attrs: { value: model.id } })));
  if (models.some((model) => model.id === chosen)) modelSelect.value = chosen;
  if (models.length === 0) showError('No gpu-node is serving a model right now.');
}

function statsLine(stats: AnswerStats): HTMLElement {
  const parts = [
    `cached ${stats.cachedTokens} tokens`,
    `first token ${formatMs(stats.ttftMs)}`,
    stats.tokensPerSecond === null ? null : `${stats.tokensPerSecond.toFixed(1)} tokens/s`,
    `snapshot ${formatBytes(stats.snapshotBytes)}`,
  ].filter((part): part is string => part !== null);
  return element('p', { className: 'stats' },
    element('span', { className: `badge badge-${stats.resume}`, text: stats.resume, attrs: { title: 'how this turn started (x-bamba-resume)' } }),
    ` ${parts.join(' · ')}`);
}

function renderTranscript(): void {
  systemField.hidden = current !== null; // a session's system prompt is set when it is created
  if (!current) {
    sessionTitle.textContent = 'New conversation';
    transcript.replaceChildren(element('li', { className: 'hint', text: 'Send a message to start a session. Its state is saved after every answer, so the next turn resumes instead of replaying.' }));
    return;
  }
  const session = current;
  const saved = savedSessions().find((entry) => entry.id === session.id);
  sessionTitle.textContent = saved?.title ?? session.id;
  const stats = statsOf(session.id);
  transcript.replaceChildren(...session.messages.map((message, index) => {
    const answerStats = stats[String(index)];
    const item = element('li', { className: `message message-${message.role}`, attrs: answerStats ? { 'data-resume': answerStats.resume } : {} },
      element('span', { className: 'role', text: message.role }),
      element('div', { className: 'content', text: message.content }));
    if (message.role === 'assistant') {
      if (answerStats) item.append(statsLine(answerStats));
      item.append(element('button', { className: 'link-button', text: 'Fork here', attrs: { type: 'button', 'aria-label': `Fork here (after message ${index + 1})` }, onClick: () => void forkAt(index + 1) }));
    }
    return item;
  }));
}

function renderSessions(): void {
  const sessions = savedSessions();
  sessionList.replaceChildren(...sessions.map((saved) => element('li', { className: saved.id === current?.id ? 'session current' : 'session' },
    element('button', { className: 'session-open', text: saved.title, attrs: { type: 'button', ...(saved.id === current?.id ? { 'aria-current': 'true' } : {}), title: `${saved.id} (${saved.model})` }, onClick: () => void openSession(saved.id) }),
    element('button', { className: 'session-delete', text: '×', attrs: { type: 'button', 'aria-label': `Delete session ${saved.title}` }, onClick: () => void deleteSession(saved.id) }))));
  if (sessions.length === 0) sessionList.append(element('li', { className: 'hint', text: 'No sessions yet.' }));
}

async function fetchSession(sessionId: string): Promise<SessionWire> {
  return (await (await call(keys, `/v1/sessions/${encodeURIComponent(sessionId)}`)).json()) as SessionWire;
}

/** One action at a time: a second click while a turn, fork or delete runs does nothing. */
async function exclusive(action: () => Promise<void>): Promise<void> {
  if (busy) return;
  busy = true;
  sendButton.disabled = true;
  showError(null);
  try {
    await action();
  } finally {
    busy = false;
    sendButton.disabled = false;
  }
}

function openSession(sessionId: string): Promise<void> {
  return exclusive(() => loadSession(sessionId));
}

async function loadSession(sessionId: string): Promise<void> {
  try {
    current = await fetchSession(sessionId);
    localStorage.setItem(CURRENT_KEY, sessionId);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      forget(sessionId);
      showError('That session no longer exists (it expired or was deleted).');
    } else if (error instanceof ApiError && error.status === 401) {
      if (await askForKey(keys, 'This server wants an API key.')) return loadSession(sessionId);
    } else {
      showError(error instanceof Error ? error.message : String(error));
    }
    current = null;
  }
  if (current) modelSelect.value = current.model;
  modelSelect.disabled = current !== null;
  renderSessions();
  renderTranscript();
  messageInput.focus(); // the list was redrawn: keyboard users continue where they type
}

function forget(sessionId: string): void {
  saveSessions(savedSessions().filter((entry) => entry.id !== sessionId));
  localStorage.removeItem(statsKey(sessionId));
  if (localStorage.getItem(CURRENT_KEY) === sessionId) localStorage.removeItem(CURRENT_KEY);
}

/** No session open: the next message creates one (with the model and system prompt chosen). */
function showNoSession(): void {
  current = null;
  localStorage.removeItem(CURRENT_KEY);
  modelSelect.disabled = false;
  renderSessions();
  renderTranscript();
}

function startNewSession(): void {
  if (busy) return;
  showNoSession();
  messageInput.focus();
}

function deleteSession(sessionId: string): Promise<void> {
  return exclusive(async () => {
    const deleted = await withKey(async () => {
      try {
        await call(keys, `/v1/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE' });
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error; // gone already: forget it too
      }
      return true;
    });
    if (!deleted) return;
    forget(sessionId);
    if (current?.id === sessionId) showNoSession();
    else renderSessions();
    messageInput.focus();
    announce('Session deleted.');
  });
}

function forkAt(keepMessages: number): Promise<void> {
  return exclusive(async () => {
    const source = current;
    if (!source) return;
    const fork = await withKey(async () => (await (await call(keys, `/v1/sessions/${encodeURIComponent(source.id)}/fork`, { method: 'POST', json: { keep_messages: keepMessages } })).json()) as SessionWire);
    if (!fork) return;
    const sourceTitle = savedSessions().find((entry) => entry.id === source.id)?.title ?? source.id;
    saveSessions([{ id: fork.id, title: `${sourceTitle} ↳ ${keepMessages}`, model: fork.model }, ...savedSessions()]);
    const kept = Object.entries(statsOf(source.id)).filter(([index]) => Number(index) < keepMessages);
    saveStats(fork.id, Object.fromEntries(kept));
    await loadSession(fork.id);
    announce(`Forked after message ${keepMessages}.`);
  });
}

interface Usage {
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
}

interface StreamedAnswer {
  resume: string;
  ttftMs: number;
  tokensPerSecond: number | null;
  cachedTokens: number;
}

/** One turn: stream the answer into `target` and measure it. */
async function streamTurn(session: SessionWire, text: string, target: HTMLElement): Promise<StreamedAnswer> {
  const startedAt = performance.now();
  const maxTokens = Number(maxTokensInput.value) || undefined;
  const response = await call(keys, '/v1/chat/completions', {
    method: 'POST',
    json: { model: session.model, session_id: session.id, messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true }, ...(maxTokens ? { max_tokens: maxTokens } : {}) },
  });
  const resume = response.headers.get('x-bamba-resume') ?? 'unknown';
  let firstAt: number | null = null;
  let usage = null as Usage | null;
  for await (const data of sseData(response)) {
    const chunk = data as { error?: { message?: string }; choices?: Array<{ delta?: { content?: string } }>; usage?: Usage };
    if (chunk.error) throw new Error(chunk.error.message ?? 'the answer failed');
    const piece = chunk.choices?.[0]?.delta?.content;
    if (piece) {
      firstAt ??= performance.now();
      target.textContent += piece;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  const endedAt = performance.now();
  const tokens = usage?.completion_tokens ?? 0;
  return {
    resume,
    ttftMs: (firstAt ?? endedAt) - startedAt,
    // Decode rate after the first token (the first one's wait is the time to first token).
    tokensPerSecond: firstAt !== null && tokens > 1 && endedAt > firstAt ? (tokens - 1) / ((endedAt - firstAt) / 1000) : null,
    cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
  };
}

/** Tell screen readers what just happened (the transcript itself is redrawn, not announced). */
function announce(text: string): void {
  announcer.textContent = text;
}

function send(text: string): Promise<void> {
  if (text.trim() === '') return Promise.resolve();
  return exclusive(async () => {
    let session = current;
    if (!session) {
      const created = await withKey(async () => (await (await call(keys, '/v1/sessions', { method: 'POST', json: { model: modelSelect.value, ...(systemInput.value.trim() ? { system: systemInput.value.trim() } : {}) } })).json()) as SessionWire);
      if (!created) return;
      session = created;
      current = created;
      saveSessions([{ id: created.id, title: text.trim().slice(0, 40), model: created.model }, ...savedSessions()]);
      localStorage.setItem(CURRENT_KEY, created.id);
      modelSelect.disabled = true;
      renderSessions();
      renderTranscript();
    }
    const answer = element('div', { className: 'content' });
    const pending = element('li', { className: 'message message-assistant streaming', attrs: { 'aria-busy': 'true' } }, element('span', { className: 'role', text: 'assistant' }), answer);
    if (transcript.querySelector('.hint')) transcript.replaceChildren();
    transcript.append(element('li', { className: 'message message-user' }, element('span', { className: 'role', text: 'user' }), element('div', { className: 'content', text })), pending);
    messageInput.value = '';
    const turnSession = session;
    const streamed = await withKey(() => streamTurn(turnSession, text, answer));
    // A turn that failed committed nothing: give the text back so it can be sent again.
    if (!streamed) messageInput.value = text;
    // The committed session is the truth: its messages, and the snapshot its turn saved (which
    // lands just after the answer ends: read again briefly until the session points at it).
    const tokensBefore = current?.token_count ?? 0;
    let after = await withKey(() => fetchSession(turnSession.id));
    for (let attempt = 0; streamed && after && after.token_count <= tokensBefore && attempt < STATE_LANDING_READS; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, STATE_LANDING_PAUSE_MS));
      after = await withKey(() => fetchSession(turnSession.id));
    }
    if (after) {
      if (streamed) {
        const stats = statsOf(after.id);
        stats[String(after.messages.length - 1)] = { ...streamed, snapshotBytes: after.snapshot_bytes };
        saveStats(after.id, stats);
        announce(`Answer (${streamed.resume}): ${after.messages.at(-1)?.content ?? ''}`);
      }
      current = after;
      renderTranscript();
    } else {
      pending.removeAttribute('aria-busy');
      pending.classList.remove('streaming');
    }
  });
}

composer.addEventListener('submit', (event) => {
  event.preventDefault();
  void send(messageInput.value);
});
messageInput.addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter starts a new line.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});
byId('new-session').addEventListener('click', startNewSession);
byId('key-button').addEventListener('click', () => void askForKey(keys, 'The API key this browser sends (kept in this browser only).').then((saved) => (saved ? loadModels() : undefined)));

renderSessions();
renderTranscript();
void loadModels().then(() => {
  const last = localStorage.getItem(CURRENT_KEY);
  if (last) void openSession(last);
});
