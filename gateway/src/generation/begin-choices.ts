/**
 * A request's `n` choices: one job per choice (choice i samples with seed + i, `choiceParams`),
 * begun together, their answer pieces merged as they come. With n = 1 this is the one
 * generation, unchanged.
 *
 * - The first choice is admitted for all (the queue has room for every job) and queued before
 *   the others begin. The answer begins once every choice is queued and one has started: a
 *   refusal of admission (a full queue) or of the gpu-node (a prompt too long: the same for every
 *   choice) is the request's plain HTTP error, and the jobs begun are stopped. Choices that wait
 *   for a slot start later, without holding back the others' first tokens.
 * - While the answer has not begun, the pieces of choices that started are read on and kept
 *   (their streams must not lag, or the relay cuts them).
 * - After that, each choice has at most one piece in flight, asked for once the caller took the
 *   previous one: a slow client leaves the rest in Redis, where the relay's lag rules apply.
 * - A choice that fails fails the request: its siblings are cancelled.
 * - Long chat messages can be evaluated once for all choices (`sharedPrefillChars`, opt-in): a
 *   prefill-only job saves the state at their end as a prefix-cache entry, and every choice
 *   resumes from it: one evaluation and n state reads from Redis instead of n evaluations (a win
 *   on CPU nodes, measured; on a GPU a big state's reads may cost more than they save).
 */
import { BambaError, choiceRequest, promptIndexOf, type AnswerPiece, type ValidatedGenerationRequest } from '@bamba/shared';
import { beginGeneration, type BeginOptions, type GenerationDeps, type StartedGeneration } from './begin-generation.js';

export interface ChoicePiece {
  index: number;
  piece: AnswerPiece;
}

export interface StartedChoices {
  /** The request with `max_tokens` resolved against the model (every choice's is the same). */
  request: ValidatedGenerationRequest;
  /** Each choice's generation, by index, once it started (every one has, once its first piece came). */
  generations: readonly (StartedGeneration | undefined)[];
  /** The choices' pieces after their starts, in arrival order; throws the first failure. */
  pieces: AsyncGenerator<ChoicePiece, void, undefined>;
  /** Cancel every choice's job (the client stopped reading). */
  cancel(): void;
  /** Whether the client went away or `cancel` ran (not when a choice failed, nor when the gateway stopped them). */
  readonly cancelled: boolean;
  /** Stop what still runs; must run on every way out. */
  finish(): Promise<void>;
}

/** The job (and stream) id of choice `index`: the request's own for the first. */
export function choiceRequestId(requestId: string, index: number): string {
  return index === 0 ? requestId : `${requestId}-${index}`;
}

type Settled =
  | { index: number; kind: 'queued' }
  | { index: number; kind: 'started'; generation: StartedGeneration }
  | { index: number; kind: 'piece'; piece: AnswerPiece }
  | { index: number; kind: 'failed'; error: unknown };

/** `canRestart(index)`: whether a retried attempt of that choice may replace what it had (nothing of it went out). */
export async function beginChoices(deps: GenerationDeps, validated: ValidatedGenerationRequest, options: Omit<BeginOptions, 'canRestart' | 'cancelWith' | 'sharedPrefill' | 'accepted'> & { canRestart: (index: number) => boolean }): Promise<StartedChoices> {
  const count = validated.choices;
  /** Cancels every choice's job, those not started yet included (a choice failed, or the caller cancelled). */
  const stopAll = new AbortController();
  const generations: (StartedGeneration | undefined)[] = [];
  // What settled and was not handled yet, and a wake-up for whoever waits on it: one reaction per
  // promise (a Promise.race per piece would pile reactions on a choice that waits long).
  const settled: Settled[] = [];
  let wake: (() => void) | null = null;
  let inFlight = 0;
  const settle = (result: Settled) => {
    settled.push(result);
    wake?.();
  };
  const track = (promise: Promise<Settled>) => {
    inFlight += 1;
    void promise.then((result) => {
      inFlight -= 1;
      settle(result);
    });
  };
  const nextSettled = async (): Promise<Settled> => {
    while (settled.length === 0) await new Promise<void>((resolve) => { wake = resolve; });
    wake = null;
    return settled.shift()!;
  };
  const pull = (index: number) => track(generations[index]!.next().then(
    (piece): Settled => ({ index, kind: 'piece', piece }),
    (error: unknown): Settled => ({ index, kind: 'failed', error }),
  ));

  let finishing: Promise<void> | null = null;
  /** Cancel what still runs, then finish every generation, those whose begin is still on its way included. */
  const finish = () => {
    finishing ??= (async () => {
      stopAll.abort();
      while (inFlight > 0 || settled.length > 0) {
        const result = await nextSettled();
        if (result.kind === 'started') generations[result.index] = result.generation;
      }
      await Promise.all(generations.map((generation) => generation?.finish()));
    })();
    return finishing;
  };

  const queuedChoices = new Set<number>();
  const beginChoice = (index: number) => {
    // The first choice's admission counts every job of the request; each sibling counts its own.
    const choice = choiceRequest(validated, index);
    const onQueued = (relayGroup: string) => {
      queuedChoices.add(index);
      options.onQueued?.(relayGroup);
      settle({ index, kind: 'queued' });
    };
    const shared = prefilled ? { sharedPrefill: true, accepted: true } : {};
    track(beginGeneration(deps, choice, { ...options, ...shared, requestId: choiceRequestId(options.requestId, index), canRestart: () => options.canRestart(index), cancelWith: stopAll.signal, onQueued }).then(
      (generation): Settled => ({ index, kind: 'started', generation }),
      // Only a gpu-node's refusal (the choice was queued) is about its prompt; admission's are the request's.
      (error: unknown): Settled => ({ index, kind: 'failed', error: queuedChoices.has(index) ? ofPrompt(validated, index, error) : error }),
    ));
  };
  const prefilled = sharesPrefill(validated, deps.config.sharedPrefillChars) && (await prefillShared(deps, validated, options));
  // The siblings begin once the first is queued: a request the queue has no room for queues nothing.
  beginChoice(0);
  const started = (result: Extract<Settled, { kind: 'started' }>) => {
    generations[result.index] = result.generation;
    pull(result.index);
  };

  // Until every choice is queued and one started (with several prompts, one of every prompt:
  // prompts differ, and a refusal of one, too long, stays the request's plain HTTP error): pieces
  // of those that started are read on and kept.
  const kept: ChoicePiece[] = [];
  const promptsStarted = new Set<number>();
  const promptCount = validated.prompts?.length ?? 1;
  let queued = 0;
  let first: StartedGeneration | undefined;
  try {
    while (queued < count || !first || promptsStarted.size < promptCount) {
      const result = await nextSettled();
      if (result.kind === 'failed') throw result.error;
      if (result.kind === 'queued') {
        queued += 1;
        if (result.index === 0) for (let index = 1; index < count; index += 1) beginChoice(index);
      }
      else if (result.kind === 'started') {
        started(result);
        first ??= result.generation;
        promptsStarted.add(promptIndexOf(validated, result.index));
      } else {
        // A retried attempt starts its choice over: what it had is void (none of it went out yet).
        if (result.piece.kind === 'restart') kept.splice(0, kept.length, ...kept.filter((piece) => piece.index !== result.index));
        kept.push({ index: result.index, piece: result.piece });
        if (result.piece.kind !== 'end') pull(result.index);
      }
    }
  } catch (error) {
    await finish();
    throw error;
  }

  async function* merged(): AsyncGenerator<ChoicePiece, void, undefined> {
    // Their next pieces are in flight already.
    yield* kept.splice(0);
    while (inFlight > 0 || settled.length > 0) {
      const result = await nextSettled();
      if (result.kind === 'failed') {
        stopAll.abort(); // its siblings stop now; the caller tells the client, then finishes
        throw result.error;
      }
      if (result.kind === 'started') started(result);
      if (result.kind !== 'piece') continue;
      yield { index: result.index, piece: result.piece };
      // Asked for only now: the caller has dealt with this choice's previous piece.
      if (result.piece.kind !== 'end') pull(result.index);
    }
  }

  let cancelled = false;
  return {
    // (Its params are the first started choice's, with max_tokens resolved; what differs between
    // choices is only the seed, and the prompt, which `prompts` keeps.)
    request: { ...first.request, choices: count, ...(validated.prompts ? { prompts: validated.prompts } : {}) },
    generations,
    pieces: merged(),
    cancel: () => {
      cancelled = true;
      stopAll.abort();
    },
    get cancelled() {
      return cancelled || options.signal.aborted;
    },
    finish,
  };
}

/**
 * Whether the choices' messages are evaluated once for all: several choices of a stateless chat
 * whose messages hold `minChars` characters or more, without tools (the prefill renders the
 * messages alone, which a prompt with tools would not extend).
 */
function sharesPrefill(request: ValidatedGenerationRequest, minChars: number): boolean {
  if (minChars === 0 || request.choices < 2 || request.input.kind !== 'chat' || request.sessionId || request.input.tools?.length) return false;
  let chars = 0;
  for (const message of request.input.messages) chars += message.content.length;
  return chars >= minChars;
}

/**
 * Evaluate the request's messages once and save the state at their end in the prefix cache (a
 * prefill-only job, as a batch seeds what its requests share). Only when nothing waits in the
 * queue: the choices are queued after it, and would wait twice behind what arrived meanwhile.
 * Best effort: false when it did not run or failed (each choice then evaluates the messages
 * itself, and meets the same refusal, if it was one); only the client's leaving ends the request here.
 */
async function prefillShared(deps: GenerationDeps, validated: ValidatedGenerationRequest, options: Omit<BeginOptions, 'canRestart' | 'cancelWith'>): Promise<boolean> {
  if ((await deps.region.waitingJobs()) > 0) return false;
  const { onQueued: _choicesOnly, ...seedOptions } = options;
  let seed: StartedGeneration | undefined;
  try {
    seed = await beginGeneration(deps, validated, { ...seedOptions, requestId: `${options.requestId}-prefill`, canRestart: () => true, prefillOnly: true });
    while ((await seed.next()).kind !== 'end');
    return true;
  } catch (error) {
    if (options.signal.aborted) throw error;
    return false;
  } finally {
    await seed?.finish();
  }
}

/** A refusal of one of several prompts' choices (a 400) names that prompt: the gpu-node's message does not say which. */
function ofPrompt(request: ValidatedGenerationRequest, index: number, error: unknown): unknown {
  if (!request.prompts || !(error instanceof BambaError) || error.type !== 'invalid_request_error') return error;
  const at = `prompt[${promptIndexOf(request, index)}]`;
  // (`messages`: a gpu-node from before it named a completion's prompt so.)
  const aboutPrompt = error.param === null || error.param === 'prompt' || error.param === 'messages';
  return new BambaError(error.type, error.status, error.retryable, `${at}: ${error.message}`, { param: aboutPrompt ? at : error.param, code: error.code, cause: error });
}
