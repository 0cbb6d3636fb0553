/**
 * The `Engine` port: everything the gpu-node needs from an inference engine, in our own types.
 * The scheduler and intake talk to this interface only; llama.cpp lives behind it
 * (`llama-engine.ts`), and scheduler tests can use a fake.
 */
import { InvalidRequestError, type OutputFormat, type SamplingParams, type TokenLogprob, type Tool, type ToolCall } from '@bamba/shared';
import type { SnapshotEncoding } from '../state/recurrent-bf16.js';

export type { SnapshotEncoding };

/**
 * OpenAI's answer (and vLLM's) to an explicit max_tokens the context cannot hold after `held`
 * tokens of prompt: a refusal naming both counts.
 */
export function assertAnswerFits(contextSize: number, held: number, params: Pick<SamplingParams, 'maxTokens' | 'maxTokensExplicit'>): void {
  if (!params.maxTokensExplicit || params.maxTokens <= contextSize - held) return;
  throw new InvalidRequestError(
    `This model's maximum context length is ${contextSize} tokens. However, you requested ${held + params.maxTokens} tokens (${held} in the messages, ${params.maxTokens} in the completion). Please reduce the length of the messages or completion.`,
    { code: 'context_length_exceeded', param: 'messages' },
  );
}

/** One slot = one sequence of the engine's single context. Opaque outside the engine. */
export interface Slot {
  /** 0-based slot index, stable for the engine's lifetime. */
  readonly index: number;
}

/** Where the engine runs its layers. `auto` picks CUDA when usable, else CPU. */
export type EngineDevice = 'auto' | 'cpu' | 'cuda';

export interface EngineOptions {
  /** Path of a GGUF model file. */
  modelPath: string;
  /** Default `auto`. */
  device?: EngineDevice;
  /** Number of slots (sequences in the one context). Part of the fingerprint. Default 4. */
  slots?: number;
  /** Tokens per slot. Default: the model's training context, at most 4096. */
  contextSize?: number;
  /** Fixed, never `auto`, so the state layout (and fingerprint) is known. Default false. */
  flashAttention?: boolean;
  /** CPU threads for decoding. Default: all cores but one (spinning threads fight the event loop). */
  threads?: number;
  /**
   * Evaluate each prompt alone, never beside other slots' decode steps, so a prompt's state (and
   * the answer) does not depend on load (see `evaluation-gate.ts`). Costs throughput when many
   * prompts arrive at once. Default true.
   */
  isolatePrompts?: boolean;
  /** Folder for llama.cpp's state files on export and import. Default /dev/shm (else the OS temp dir). */
  stateDir?: string;
  /**
   * How `exportState` stores state: `f32` as llama.cpp wrote it, or `bf16` for the recurrent
   * (Mamba) tensors, about half the bytes. Import reads either. Default `f32`.
   */
  snapshotEncoding?: SnapshotEncoding;
  /**
   * Let node-llama-cpp refuse a context its memory estimate says will not fit. Default true. The
   * GPU capacity benchmark turns it off: llama.cpp's own allocation is the test of what fits, and
   * the estimate does not know that a hybrid's Mamba layers keep no per-token cache.
   */
  memorySafetyChecks?: boolean;
}


/** What a loaded engine is. */
export interface EngineInfo {
  /** `general.name` of the model, or its file name. */
  modelName: string;
  /** Model fingerprint (hex sha-256): a snapshot restores only into an equal fingerprint. */
  fingerprint: string;
  /** The device actually used. */
  device: 'cpu' | 'cuda';
  slots: number;
  /** Tokens one slot holds. */
  contextSize: number;
  /** The model's training context length. */
  trainContextSize: number;
  vocabSize: number;
  /** e.g. `node-llama-cpp@3.21.1/llama.cpp@v0.4.0`. */
  engineVersion: string;
}

/** A chat message as the chat template sees it (already validated). */
export interface ChatTemplateMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
  /** An assistant message's tool calls (the template writes them after its content). */
  toolCalls?: readonly ToolCall[];
  /** A tool message's call. */
  toolCallId?: string;
}

/**
 * A grammar an answer is held to: a structured output's format, or tool calls only: one
 * (`parallel` false) or more calls, each `{"name": …, "arguments": …}` of `schema` (shared's
 * `callSchemaOf`) in the model's tool-call tags.
 */
export type AnswerGrammar = OutputFormat | { type: 'tool_calls'; schema: Record<string, unknown>; parallel: boolean };

/** Sampling and stopping, every default resolved (the wire type, shared with the gateway). */
export type GenerationParams = SamplingParams;

export const GREEDY: Omit<GenerationParams, 'maxTokens'> = { temperature: 0, topP: 1, topK: 0, seed: 0, stop: [] };

/** One generated token, or (token null) the text still held back when generation ended. */
export interface GeneratedToken {
  /** The token id; null for the last piece of an answer that ended by an end-of-generation token. */
  token: number | null;
  /** Text released with this token; may be '' while a stop string or a UTF-8 sequence is pending. */
  text: string;
  /**
   * Probability the model gave this token after sampling settings; only when `generate` was asked
   * for probabilities (or the request for log probabilities).
   */
  probability?: number;
  /** Its log probability and the most likely tokens at its place, when `params.logprobs` asked for them. */
  logprob?: TokenLogprob;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface GenerationSummary {
  finishReason: FinishReason;
  /** Tokens evaluated for the prompt in this call. */
  promptTokens: number;
  completionTokens: number;
  /** From call to first generated token (prompt evaluation + one decode). */
  timeToFirstTokenMs: number;
  totalMs: number;
}

/** A running generation: iterate for tokens; `summary` settles when iteration ends. */
export interface GenerateOptions {
  urgent?: boolean;
  grammar?: AnswerGrammar;
  probabilities?: boolean;
}

export interface GenerationStream extends AsyncIterable<GeneratedToken> {
  readonly summary: Promise<GenerationSummary>;
}

export interface Engine {
  readonly info: EngineInfo;
  /** A free slot, emptied; `null` when all are taken (capacity is not an error). */
  acquireSlot(): Slot | null;
  /** Clears the slot's tokens and returns it to the pool. */
  releaseSlot(slot: Slot): Promise<void>;
  /** Empty an acquired slot (its state is unwanted) and keep it. */
  resetSlot(slot: Slot): Promise<void>;
  /** Slots not currently acquired. */
  freeSlotCount(): number;
  /** Tokens currently held in the slot's state. */
  slotTokens(slot: Slot): readonly number[];
  tokenize(text: string, options?: { special?: boolean }): number[];
  /** A lower bound on the tokens `text` becomes, computed without tokenizing it (cheap). */
  minimumTokens(text: string): number;
  detokenize(tokens: readonly number[]): string;
  /**
   * Render messages with the model's chat template and tokenize: the template's role markers as
   * special tokens, message content always as plain text (typed markers are characters).
   */
  tokenizeChat(messages: readonly ChatTemplateMessage[], options?: { addGenerationPrompt?: boolean; tools?: readonly Tool[] }): number[];
  /**
   * The tokens of the first k messages (no assistant cue) for the last `limit` values of k below
   * the whole conversation, longest first: the turn boundaries where snapshots may exist.
   */
  chatBoundaries(messages: readonly ChatTemplateMessage[], limit: number, tools?: readonly Tool[]): number[][];
  /** Append tokens to the slot's state without generating. */
  evaluate(slot: Slot, tokens: readonly number[]): Promise<void>;
  /**
   * Append `promptTokens` to the slot, then generate. Generated tokens are fed back into the
   * slot as generation goes on (all but the last one, which was sampled but not yet evaluated).
   * Aborting `signal` ends generation within one decode step, with finish reason `cancelled`.
   * `urgent` (an interactive request): its prompt is evaluated before waiting batch prompts.
   * `probabilities`: report each token's probability, which costs a sort of the whole
   * vocabulary per token (5× slower decoding on a 128K vocabulary on a CPU: BENCHMARKS.md,
   * vocabulary-work), so serving does not ask for it.
   */
  generate(slot: Slot, promptTokens: readonly number[], params: GenerationParams, signal?: AbortSignal, options?: GenerateOptions): GenerationStream;
  /**
   * Build (and keep) an answer's grammar (the job's format, or `options.grammar` of `generate`),
   * before `generate` uses it. Throws `InvalidRequestError` for one this model cannot write.
   */
  prepareGrammar(grammar: AnswerGrammar): Promise<void>;
  /**
   * The slot's state as a snapshot (our header + the engine's bytes), stored in the engine's
   * snapshot encoding unless `options.encoding` says otherwise.
   */
  exportState(slot: Slot, options?: { encoding?: SnapshotEncoding }): Promise<Buffer>;
  /**
   * Replace the slot's state with a snapshot. Throws `SnapshotRejectedError` for a snapshot
   * from another fingerprint, corrupt or truncated bytes; the slot is then empty and usable.
   */
  importState(slot: Slot, snapshot: Uint8Array): Promise<void>;
  close(): Promise<void>;
}
