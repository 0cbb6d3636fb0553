/**
 * Runs one generation job: assemble the conversation (a session's transcript plus its new
 * turn, or the request alone), restore what state it can, evaluate only the new tokens,
 * generate, relay tokens as events, then persist the turn. Knows nothing of queues: the intake
 * decides what a result or an error means for the job.
 */
import {
  assertToolAnswers,
  BambaError,
  DeadlineExceededError,
  errorToWire,
  InvalidRequestError,
  NotFoundError,
  type ChatMessage,
  type GenerationJob,
  chatToolParam,
  callIdsOf,
  answerItemId,
  messageParamOf,
  withParam,
  type ToolCall,
} from '@bamba/shared';
import type { CommittedTurn, TokenEvents } from '@bamba/region';
import { tokenSequenceHash } from '../state/snapshot-codec.js';
import { answerToolsOf, withCallIds, type AnswerTools } from './answer-tools.js';
import { PendingSnapshots } from './pending-snapshots.js';
import { commitTranscript, persistStateless, saveTurnState, turnBoundary } from './persist-state.js';
import { prefillPrefix } from './prefill-prefix.js';
import { restoreState, type ConversationState } from './restore-state.js';
import type { ServingDeps } from './serving-deps.js';

export type RunOutcome =
  | { kind: 'finished'; completionTokens: number }
  | { kind: 'cancelled' }
  /** The client's fault or otherwise permanent: reported to the client, never retried. */
  | { kind: 'rejected'; error: BambaError };

type Conversation = ConversationState | { kind: 'already-committed'; turn: CommittedTurn; answer: ChatMessage };

/**
 * The length check before any tokenizing: text that cannot fit the context whatever it
 * tokenizes to is refused at the cost of counting its bytes.
 */
function assertMayFit(deps: ServingDeps, texts: readonly string[], param: 'messages' | 'prompt'): void {
  const atLeast = texts.reduce((sum, text) => sum + deps.engine.minimumTokens(text), 0);
  if (atLeast >= deps.engine.info.contextSize) {
    throw new InvalidRequestError(`this request needs at least ${atLeast} tokens of context, the model's context holds ${deps.engine.info.contextSize}`, { code: 'context_length_exceeded', param });
  }
}

/** The texts a chat prompt renders from the request: contents, tool calls and the tools. */
function chatTexts(messages: readonly ChatMessage[], tools: AnswerTools['tools']): string[] {
  return [...messages.flatMap((message) => [message.content, ...(message.toolCalls ?? []).map((call) => call.arguments)]), ...(tools ? [JSON.stringify(tools)] : [])];
}

async function conversationOf(deps: ServingDeps, job: GenerationJob, tools: AnswerTools['tools']): Promise<Conversation> {
  if (job.input.kind === 'completion') assertMayFit(deps, [job.input.prompt], 'prompt');
  else assertMayFit(deps, chatTexts(job.input.messages, tools), 'messages');
  if (job.input.kind === 'completion') {
    return { tenant: job.tenant, messages: null, session: null, promptTokens: deps.engine.tokenize(job.input.prompt) };
  }
  if (!job.session) {
    return { tenant: job.tenant, messages: job.input.messages, ...(tools ? { tools } : {}), session: null, promptTokens: deps.engine.tokenizeChat(job.input.messages, tools ? { tools } : {}), ...(job.sharedPrefill ? { sharedPrefill: true } : {}) };
  }
  // The previous turn's state may still be being saved here: wait for it (a few seconds at most),
  // then read the session, which points at it once it landed.
  await deps.pendingSnapshots.settle([PendingSnapshots.sessionKey(job.session.sessionId)]);
  const loaded = await deps.sessions.load(job.session.sessionId);
  if (!loaded || loaded.session.tenant !== job.tenant) throw new NotFoundError(`session '${job.session.sessionId}' does not exist`, { param: 'session_id', code: 'session_not_found' });
  const { session, transcript, lastTurn } = loaded;
  if (session.version === job.session.expectedVersion + 1 && lastTurn?.requestId === job.requestId) {
    // This request's turn was committed by an earlier attempt whose node died before its end event.
    return { kind: 'already-committed', turn: lastTurn, answer: transcript.findLast((message) => message.id === answerItemId(job.requestId)) ?? { role: 'assistant', content: '' } };
  }
  if (session.version !== job.session.expectedVersion) throw new InvalidRequestError('the session moved on since this turn was accepted', { code: 'session_conflict' });
  // A tool message of the turn answers a call of the transcript or of the turn itself.
  assertToolAnswers(job.input.messages, callIdsOf(transcript), chatToolParam);
  const messages = [...transcript, ...job.input.messages];
  assertMayFit(deps, chatTexts(messages, tools), 'messages');
  let promptTokens: number[];
  try {
    promptTokens = deps.engine.tokenizeChat(messages, tools ? { tools } : {});
  } catch (error) {
    throw inTurnTerms(error, transcript.length);
  }
  return { tenant: job.tenant, messages, ...(tools ? { tools } : {}), session, promptTokens };
}

/**
 * A refusal about the message at some index of a session's whole conversation, in the terms of
 * the turn's request: its own messages count from 0, and one of the transcript is the session's.
 */
function inTurnTerms(error: unknown, transcriptLength: number): unknown {
  const at = error instanceof InvalidRequestError ? messageParamOf(error.param) : null;
  if (!at || !(error instanceof InvalidRequestError)) return error;
  if (at.index < transcriptLength) return withParam(error, 'session_id', `the session's message ${at.index}`);
  return withParam(error, `messages[${at.index - transcriptLength}]${at.rest}`);
}

/**
 * Where the turn's snapshot would go, or null when the history with this answer cannot be
 * rendered (the snapshot is optional: the answer is out either way, and a next request that sends
 * such a history gets the refusal itself).
 */
function boundaryOrNone(deps: ServingDeps, messages: readonly ChatMessage[], answer: ChatMessage, tools: ConversationState['tools']): number[] | null {
  try {
    return turnBoundary(deps, messages, answer, tools);
  } catch (error) {
    if (!(error instanceof BambaError) || error.retryable) throw error;
    deps.log(`persist: no snapshot after this answer (${error.message})`);
    return null;
  }
}

/** Answer a retried request from the turn its earlier attempt committed (its answer, calls included). */
async function answerCommitted(events: TokenEvents, turn: CommittedTurn, answer: ChatMessage): Promise<RunOutcome> {
  events.start(turn.promptTokens, turn.cachedTokens, turn.resume);
  events.delta(answer.content, turn.completionTokens);
  await events.end({ finishReason: turn.finishReason, promptTokens: turn.promptTokens, completionTokens: turn.completionTokens, cachedTokens: turn.cachedTokens, timeToFirstTokenMs: 0, totalMs: 0, ...(answer.toolCalls ? { toolCalls: answer.toolCalls } : {}) });
  return { kind: 'finished', completionTokens: turn.completionTokens };
}

/**
 * A session turn that does not fit: its history is part of every turn, so say how to go on, in
 * the terms of both APIs that run turns (a chat session, a Responses conversation).
 */
function sessionFull(refusal: BambaError, maxTokensExplicit: boolean): BambaError {
  const fewerTokens = maxTokensExplicit ? 'ask for fewer output tokens, ' : '';
  return new InvalidRequestError(`${refusal.message}; its history is part of every turn: ${fewerTokens}keep fewer messages (a session: fork it with fewer, POST /v1/sessions/{id}/fork with keep_messages; a conversation: delete earlier items, DELETE /v1/conversations/{id}/items/{item_id}) or start a new one`, { code: 'context_length_exceeded', param: refusal.param });
}

/** The engine's context refusals speak of `messages` (the engine sees tokens only), which a legacy completion calls its `prompt`. */
function ofRequestField(job: GenerationJob, refusal: BambaError): BambaError {
  if (job.input.kind !== 'completion' || refusal.param !== 'messages') return refusal;
  return new BambaError(refusal.type, refusal.status, refusal.retryable, refusal.message.replaceAll('the messages', 'the prompt'), { code: refusal.code, param: 'prompt', cause: refusal });
}

/**
 * Throws only for failures worth retrying on another attempt (engine or Redis faults);
 * anything the client caused is returned as `rejected` after its error event is written.
 */
export async function runGeneration(deps: ServingDeps, job: GenerationJob, events: TokenEvents, signal: AbortSignal, nowMs = Date.now): Promise<RunOutcome> {
  const reject = async (refusal: BambaError): Promise<RunOutcome> => {
    const error = job.session && refusal.code === 'context_length_exceeded' ? sessionFull(refusal, job.params.maxTokensExplicit === true) : ofRequestField(job, refusal);
    await events.error(errorToWire(error));
    return { kind: 'rejected', error };
  };
  /** A refusal of the request's own (a non-retryable BambaError) is reported; anything else is thrown, for a retry. */
  const refuseOrThrow = async (error: unknown): Promise<RunOutcome> => {
    if (error instanceof BambaError && !error.retryable) return reject(error);
    throw error;
  };
  if (nowMs() > job.deadlineAtMs) return reject(new DeadlineExceededError('the request waited in the queue past its deadline'));
  const answerTools = answerToolsOf(job);
  if (answerTools.grammar) {
    // Its grammar first (then kept for the generation): a format or tools this model cannot write is the request's fault.
    try {
      await deps.engine.prepareGrammar(answerTools.grammar);
    } catch (error) {
      return refuseOrThrow(error);
    }
  }
  if (job.prefillOnly) {
    try {
      assertMayFit(deps, job.input.kind === 'chat' ? chatTexts(job.input.messages, undefined) : [], 'messages');
      return { kind: 'finished', completionTokens: await prefillPrefix(deps, job, events) };
    } catch (error) {
      return refuseOrThrow(error);
    }
  }
  let conversation: Conversation;
  try {
    conversation = await conversationOf(deps, job, answerTools.tools);
  } catch (error) {
    return refuseOrThrow(error);
  }
  if ('kind' in conversation) return answerCommitted(events, conversation.turn, conversation.answer);
  const restored = await restoreState(deps, conversation);
  let persisted = false;
  try {
    if (signal.aborted) return { kind: 'cancelled' }; // interrupted while the state was restored
    const newTokens = conversation.promptTokens.slice(restored.heldTokens);
    let stream;
    try {
      // A forced call ends where its grammar does: a stop string inside its arguments does not cut it.
      const params = answerTools.forced ? { ...job.params, stop: [] } : job.params;
      stream = deps.engine.generate(restored.slot, newTokens, params, signal, { urgent: job.priority === 'interactive', ...(answerTools.grammar ? { grammar: answerTools.grammar } : {}) });
    } catch (error) {
      return await refuseOrThrow(error);
    }
    events.start(conversation.promptTokens.length, restored.cachedTokens, restored.resume);
    let answer = '';
    // Text before a tool call goes out as it comes; the calls are read at the end.
    const reader = answerTools.newReader();
    let summary;
    try {
      for await (const token of stream) {
        const text = reader ? reader.push(token.text) : token.text;
        answer += text;
        events.delta(text, token.token === null ? 0 : 1, token.logprob ? [token.logprob] : undefined);
      }
      summary = await stream.summary;
    } catch (error) {
      // An answer its grammar could not continue: the same request would fail the same way.
      return await refuseOrThrow(error);
    }
    if (summary.finishReason === 'cancelled') return { kind: 'cancelled' };
    const read = reader?.finish(summary.finishReason === 'length');
    if (read?.text) {
      answer += read.text;
      events.delta(read.text, 0);
    }
    const toolCalls: ToolCall[] | undefined = read?.calls ? withCallIds(read.calls) : undefined;
    const turn: CommittedTurn = {
      requestId: job.requestId,
      finishReason: summary.finishReason,
      promptTokens: conversation.promptTokens.length,
      completionTokens: summary.completionTokens,
      cachedTokens: restored.cachedTokens,
      resume: restored.resume,
    };
    const end = () => events.end({
      finishReason: turn.finishReason,
      promptTokens: turn.promptTokens,
      completionTokens: turn.completionTokens,
      cachedTokens: turn.cachedTokens,
      timeToFirstTokenMs: summary.timeToFirstTokenMs,
      totalMs: summary.totalMs,
      ...(toolCalls ? { toolCalls } : {}),
    });
    // A batch request's end state is not cached: such answers are rarely continued, and saving
    // them would hold the slot (and the context, while exporting) after every one of them; a
    // batch seeds the prefixes its requests share on purpose instead.
    const answerMessage: ChatMessage = { role: 'assistant', content: answer, ...(toolCalls ? { toolCalls } : {}) };
    const boundary = conversation.messages && job.priority !== 'batch' ? boundaryOrNone(deps, conversation.messages, answerMessage, conversation.tools) : null;
    if (!conversation.session) {
      persisted = true;
      // Nothing to commit: the answer ends now, and the prefix-cache snapshot is written after
      // it (a follow-up on this node waits for the write instead of missing the cache).
      const persisting = persistStateless(deps, conversation, restored, boundary);
      if (boundary && deps.prefixCache) deps.pendingSnapshots.track(PendingSnapshots.key(job.tenant, deps.engine.info.fingerprint, tokenSequenceHash(boundary)), persisting);
      try {
        await end();
      } finally {
        await persisting;
      }
      return { kind: 'finished', completionTokens: summary.completionTokens };
    }
    // A session turn's end event says "committed": the commit comes first; the state is saved
    // after the end event, and a next turn on this node waits for it.
    const committed = await commitTranscript(deps, job, conversation.session, answerMessage, turn);
    if (typeof committed !== 'number') return await reject(committed);
    persisted = true;
    let ended!: () => void;
    const endWritten = new Promise<void>((resolve) => { ended = resolve; });
    // The answer is out: a save that fails costs the next turn time, never this job (no retry).
    const saving = endWritten.then(() => saveTurnState(deps, conversation, restored, boundary, committed))
      .catch((error: Error) => deps.log(`persist: the turn's state was not saved (${error.message})`));
    deps.pendingSnapshots.track(PendingSnapshots.sessionKey(conversation.session.id), saving);
    // Its snapshot is also a prefix-cache entry (a fork, or a re-sent history, finds it): lookups here wait for it too.
    if (boundary) deps.pendingSnapshots.track(PendingSnapshots.key(job.tenant, deps.engine.info.fingerprint, tokenSequenceHash(boundary)), saving);
    try {
      await end();
      deps.afterEnd?.();
    } finally {
      ended();
      await saving;
    }
    return { kind: 'finished', completionTokens: summary.completionTokens };
  } finally {
    if (!persisted) await deps.engine.releaseSlot(restored.slot);
  }
}
