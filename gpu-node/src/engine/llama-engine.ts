/**
 * The llama.cpp engine (through node-llama-cpp): one model, one context, N sequences (slots).
 * Concurrent `generate` calls on different slots are merged by node-llama-cpp into shared decode
 * batches, which is our continuous batching.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { InvalidRequestError, logprobOf, MAX_TOP_LOGPROBS, ServerError, SnapshotRejectedError, type TokenLogprob, type Tool } from '@bamba/shared';
import {
  getLlama,
  LlamaLogLevel,
  TokenBias,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { tokenSequenceHash, unwrapSnapshot, wrapSnapshot } from '../state/snapshot-codec.js';
import { DEFAULT_STATE_DIR, withStateFile } from '../state/state-file.js';
import { stateMemoryKindOf, type StateMemoryKind } from '../state/state-layout.js';
import { ChatTemplate } from './chat-template.js';
import { ChatTokenizer } from './chat-tokenizer.js';
import { assertAnswerFits } from './engine.js';
import type {
  AnswerGrammar,
  ChatTemplateMessage,
  Engine,
  EngineInfo,
  EngineOptions,
  GeneratedToken,
  GenerateOptions,
  GenerationParams,
  GenerationStream,
  GenerationSummary,
  Slot,
  SnapshotEncoding,
} from './engine.js';
import { EvaluationGate } from './evaluation-gate.js';
import { computeModelFingerprint } from './fingerprint.js';
import { TextAssembler } from './text-assembler.js';
import { grammarSourceOf, OutputGrammars } from './output-grammars.js';
import { guardOutputReorder } from './reorder-guard.js';
import { guardSamplingFailures, SAMPLE_FAILED_MESSAGE, type SamplingFailures } from './sampling-failure-guard.js';
import { TokenBytes } from './token-bytes.js';
import { keepTopProbabilities } from './top-probabilities.js';
import { NODE_LLAMA_CPP_VERSION } from './versions.js';

const DEFAULT_SLOTS = 4;
const DEFAULT_MAX_CONTEXT = 4096;

interface LlamaSlot extends Slot {
  readonly sequence: LlamaContextSequence;
  acquired: boolean;
}

/** Loads the model and builds the engine. */
export async function createLlamaEngine(options: EngineOptions): Promise<LlamaEngine> {
  const device = options.device ?? 'auto';
  const llama = await loadLlama(device);
  const onGpu = llama.gpu !== false;
  const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: onGpu ? 'max' : 0 });
  try {
    const trainContextSize = model.trainContextSize;
    const contextSize = options.contextSize ?? Math.min(trainContextSize, DEFAULT_MAX_CONTEXT);
    if (contextSize > trainContextSize) throw new RangeError(`contextSize ${contextSize} exceeds the model's ${trainContextSize}`);
    const slots = options.slots ?? DEFAULT_SLOTS;
    const flashAttention = options.flashAttention ?? false;
    const context = await model.createContext({
      contextSize,
      sequences: slots,
      flashAttention,
      threads: options.threads ?? Math.max(1, availableParallelism() - 1),
      ignoreMemorySafetyChecks: options.memorySafetyChecks === false,
    });
    guardOutputReorder(context);
    keepTopProbabilities(context, MAX_TOP_LOGPROBS);
    // Outermost: a failure of the other wrappers' sample is caught too.
    const samplingFailures = guardSamplingFailures(context);
    const engineVersion = `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}/llama.cpp@${llama.llamaCppRelease.release}`;
    const fingerprint = computeModelFingerprint(options.modelPath, engineVersion, {
      slots,
      flashAttention,
      kvCacheKeyType: String(context.kvCacheKeyType),
      kvCacheValueType: String(context.kvCacheValueType),
    });
    const info: EngineInfo = {
      modelName: model.fileInfo.metadata.general?.name ?? basename(options.modelPath),
      fingerprint,
      device: onGpu ? 'cuda' : 'cpu',
      slots,
      contextSize,
      trainContextSize,
      vocabSize: vocabularySize(model),
      engineVersion,
    };
    const snapshots = { encoding: options.snapshotEncoding ?? 'f32', memory: stateMemoryKindOf(model.fileInfo.metadata.general?.architecture) } as const;
    return new LlamaEngine(model, context, info, options.isolatePrompts ?? true, options.stateDir ?? DEFAULT_STATE_DIR, snapshots, samplingFailures);
  } catch (error) {
    await model.dispose();
    throw error;
  }
}

/** Rows of the token embedding: the vocabulary as the model sees it. */
function vocabularySize(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (!Array.isArray(tokens)) throw new Error('model has no tokenizer.ggml.tokens list');
  return tokens.length;
}

/** node-llama-cpp's binding for a device (`auto`: CUDA when usable, else the CPU); never compiles. */
export async function loadLlama(device: EngineOptions['device']): Promise<Llama> {
  // `build: 'never'`: a serving process must not start a 5-minute compile or reach the network.
  const common = { build: 'never', logLevel: LlamaLogLevel.warn, progressLogs: false } as const;
  if (device === 'cpu') return getLlama({ ...common, gpu: false });
  if (device === 'cuda') return getLlama({ ...common, gpu: 'cuda' });
  try {
    return await getLlama({ ...common, gpu: 'cuda' });
  } catch {
    return getLlama({ ...common, gpu: false });
  }
}

export class LlamaEngine implements Engine {
  private readonly slots: LlamaSlot[];
  private readonly chat: ChatTokenizer | null;
  /** Control tokens that are not end-of-generation (role markers): never generated. */
  private readonly neverGenerateIds: Token[] = [];
  /** Special tokens (role markers, end of text), which a `logit_bias` may not name. */
  private readonly specialIds = new Set<number>();
  /** `neverGenerateIds` as a bias, for every request without a `logit_bias` of its own. */
  private readonly neverGenerate: TokenBias;
  /** Prompts evaluate alone, decode steps together: output does not depend on load. */
  private readonly gate = new EvaluationGate();
  /** Bytes of the vocabulary's longest token: text of n bytes is at least n / this tokens. */
  private readonly maxTokenBytes: number;
  /** Answers' grammars (structured outputs' formats, forced tool calls), kept by what they hold. */
  private readonly grammars: OutputGrammars;
  /** What each token stands for, as log probability entries show it. */
  private readonly tokenBytes: TokenBytes;

  constructor(
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    readonly info: EngineInfo,
    /** Multi-token evaluations take the gate exclusively (see EngineOptions.isolatePrompts). */
    private readonly isolatePrompts: boolean,
    /** Where llama.cpp's state files go on export and import. */
    private readonly stateDir: string,
    /** Default export encoding, and the model's memory modules (null: unknown layout, always f32). */
    private readonly snapshots: { encoding: SnapshotEncoding; memory: StateMemoryKind | null },
    /** Samples that failed (their evaluation fails, not the process), with llama.cpp's reason. */
    private readonly samplingFailures: SamplingFailures,
  ) {
    // Checkpoints let node-llama-cpp rewind recurrent state; we never rewind, so skip their RAM.
    this.slots = Array.from({ length: info.slots }, (_, index) => ({
      index,
      sequence: context.getSequence({ checkpoints: { max: 0, interval: false } }),
      acquired: false,
    }));
    const templateSource = model.fileInfo.metadata.tokenizer?.chat_template;
    this.chat =
      typeof templateSource === 'string'
        ? new ChatTokenizer(
          new ChatTemplate(templateSource, { bos: model.tokens.bosString ?? '', eos: model.tokens.eosString ?? '' }),
          (text, special) => model.tokenize(text, special),
          (text) => model.tokenize(text, true).some((token) => this.specialIds.has(token)),
        )
        : null;
    const vocabulary = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
    const tokenTypes = model.fileInfo.metadata.tokenizer?.ggml?.token_type;
    this.tokenBytes = new TokenBytes(
      model.fileInfo.metadata.tokenizer?.ggml?.model,
      Array.isArray(vocabulary) ? vocabulary : undefined,
      Array.isArray(tokenTypes) ? tokenTypes : undefined,
      (token) => model.detokenize([token as Token], true),
    );
    // A loop, not Math.max(...list): a 128K-token vocabulary as arguments overflows the stack.
    this.maxTokenBytes = 1;
    for (const token of Array.isArray(vocabulary) ? vocabulary : []) this.maxTokenBytes = Math.max(this.maxTokenBytes, Buffer.byteLength(String(token)));
    for (let token = 0; token < info.vocabSize; token++) {
      const id = token as Token;
      if (!model.isSpecialToken(id) && !model.isEogToken(id)) continue;
      this.specialIds.add(id);
      if (!model.isEogToken(id)) this.neverGenerateIds.push(id);
    }
    this.neverGenerate = new TokenBias(model.tokenizer).set(this.neverGenerateIds, 'never');
    this.grammars = new OutputGrammars(model);
  }

  acquireSlot(): Slot | null {
    const slot = this.slots.find((candidate) => !candidate.acquired);
    if (!slot) return null;
    slot.acquired = true;
    return slot;
  }

  async releaseSlot(slot: Slot): Promise<void> {
    const own = this.own(slot);
    await own.sequence.clearHistory();
    own.acquired = false;
  }

  async resetSlot(slot: Slot): Promise<void> {
    await this.own(slot).sequence.clearHistory();
  }

  freeSlotCount(): number {
    return this.slots.filter((slot) => !slot.acquired).length;
  }

  slotTokens(slot: Slot): readonly number[] {
    return this.own(slot).sequence.contextTokens;
  }

  tokenize(text: string, options: { special?: boolean } = {}): number[] {
    return this.model.tokenize(text, options.special ?? false);
  }

  minimumTokens(text: string): number {
    return Math.ceil(Buffer.byteLength(text) / this.maxTokenBytes);
  }

  detokenize(tokens: readonly number[]): string {
    return this.model.detokenize(tokens as Token[], false);
  }

  tokenizeChat(messages: readonly ChatTemplateMessage[], options: { addGenerationPrompt?: boolean; tools?: readonly Tool[] } = {}): number[] {
    return this.chatTokenizer().tokenizeChat(messages, options.addGenerationPrompt ?? true, options.tools);
  }

  chatBoundaries(messages: readonly ChatTemplateMessage[], limit: number, tools?: readonly Tool[]): number[][] {
    return this.chatTokenizer().boundaries(messages, limit, tools);
  }

  private chatTokenizer(): ChatTokenizer {
    if (!this.chat) throw new InvalidRequestError(`model ${this.info.modelName} has no chat template; use /v1/completions`);
    return this.chat;
  }

  async evaluate(slot: Slot, tokens: readonly number[]): Promise<void> {
    const own = this.own(slot);
    this.assertFits(own, tokens.length);
    if (tokens.length === 0) return;
    const evaluation = () => own.sequence.evaluateWithoutGeneratingNewTokens(tokens as Token[]);
    await (tokens.length > 1 && this.isolatePrompts ? this.gate.exclusive(evaluation) : this.gate.shared(evaluation));
  }

  generate(slot: Slot, promptTokens: readonly number[], params: GenerationParams, signal?: AbortSignal, options: GenerateOptions = {}): GenerationStream {
    const own = this.own(slot);
    if (promptTokens.length === 0) throw new InvalidRequestError('nothing to evaluate: the prompt has no tokens', { code: 'empty_prompt' });
    this.assertFits(own, promptTokens.length);
    const held = own.sequence.nextTokenIndex + promptTokens.length;
    const room = this.info.contextSize - held;
    assertAnswerFits(this.info.contextSize, held, params);
    const maxTokens = Math.min(params.maxTokens, room);
    const bias = this.biasFor(params);
    let settle!: (summary: GenerationSummary) => void;
    let fail!: (error: unknown) => void;
    const summary = new Promise<GenerationSummary>((resolve, reject) => { settle = resolve; fail = reject; });
    summary.catch(() => {}); // the iterator rethrows; an unobserved summary must not crash the process
    const tokens = this.runGeneration(own, promptTokens, params, options.grammar ?? params.format, maxTokens, bias, signal, options, settle, fail);
    return { summary, [Symbol.asyncIterator]: () => tokens };
  }

  async prepareGrammar(grammar: AnswerGrammar): Promise<void> {
    await this.grammars.stateFor(grammar);
  }

  /** The request's `logit_bias` over the never-generated control tokens (which stay never). */
  private biasFor(params: GenerationParams): TokenBias {
    if (!params.logitBias) return this.neverGenerate;
    const bias = new TokenBias(this.model.tokenizer);
    for (const [key, logit] of Object.entries(params.logitBias)) {
      const token = Number(key);
      if (token >= this.info.vocabSize) {
        throw new InvalidRequestError(`logit_bias names token ${key}, model ${this.info.modelName} has tokens 0 to ${this.info.vocabSize - 1}`, { param: 'logit_bias', code: 'invalid_value' });
      }
      // node-llama-cpp's bias skips end-of-generation tokens, and role markers are never generated:
      // refused, rather than accepted and left without effect.
      if (this.specialIds.has(token)) {
        throw new InvalidRequestError(`logit_bias names token ${key}, a special token (end of text or a role marker) whose odds cannot be changed`, { param: 'logit_bias', code: 'unsupported_value' });
      }
      bias.set(token as Token, { logit });
    }
    return bias.set(this.neverGenerateIds, 'never');
  }

  private async *runGeneration(
    slot: LlamaSlot,
    promptTokens: readonly number[],
    params: GenerationParams,
    grammar: AnswerGrammar | undefined,
    maxTokens: number,
    tokenBias: TokenBias,
    signal: AbortSignal | undefined,
    { urgent = false, probabilities = false }: GenerateOptions,
    settle: (summary: GenerationSummary) => void,
    fail: (error: unknown) => void,
  ): AsyncGenerator<GeneratedToken, void, undefined> {
    const startedMs = performance.now();
    let timeToFirstTokenMs = 0;
    let completionTokens = 0;
    let finishReason: GenerationSummary['finishReason'] = 'length';
    const assembler = new TextAssembler(params.stop, (tokens, before) => this.model.detokenize(tokens as Token[], false, before as Token[]));
    // OpenAI's penalties count the answer's own tokens only (llama.cpp's penalty sampler has the
    // same arithmetic); the multiplicative repeat penalty stays off (1).
    const generated: Token[] = [];
    const { presencePenalty = 0, frequencyPenalty = 0 } = params;
    const penalties = presencePenalty !== 0 || frequencyPenalty !== 0;
    let grammarEvaluationState;
    try {
      grammarEvaluationState = grammar ? await this.grammars.stateFor(grammar) : undefined;
    } catch (error) {
      fail(error);
      throw error;
    }
    // Each costs work over the whole vocabulary per token, so only when asked for: the chosen
    // token's probability (its confidence: a sort of every candidate), and the distribution (cut
    // to the most likely: top-probabilities.ts) when the request shows alternatives.
    const alternatives = params.logprobs;
    // (Typed as always there; read only when asked for.)
    const metadata = { confidence: probabilities || alternatives !== undefined, probabilities: (alternatives ?? 0) > 0 } as { readonly confidence: true; readonly probabilities: true };
    const iterator = slot.sequence.evaluateWithMetadata(promptTokens as Token[], metadata, {
      temperature: params.temperature,
      topP: params.topP,
      topK: params.topK,
      ...(params.minP !== undefined ? { minP: params.minP } : {}),
      seed: params.seed,
      tokenBias,
      ...(grammarEvaluationState ? { grammarEvaluationState } : {}),
      ...(penalties ? { repeatPenalty: { punishTokens: () => generated, maxPunishTokens: maxTokens, penalty: 1, presencePenalty, frequencyPenalty } } : {}),
    });
    try {
      while (completionTokens < maxTokens) {
        if (signal?.aborted) { finishReason = 'cancelled'; break; }
        // The first step evaluates the prompt: alone when it is more than one token.
        const step = await (completionTokens === 0 && promptTokens.length > 1 && this.isolatePrompts ? this.gate.exclusive(() => iterator.next(), urgent) : this.gate.shared(() => iterator.next()));
        if (step.done) {
          // An end-of-generation token: what was held back (a possible stop string, an incomplete
          // character) is the end of the answer.
          finishReason = 'stop';
          const tail = assembler.finish();
          if (tail !== '') yield { token: null, text: tail };
          break;
        }
        if (completionTokens === 0) timeToFirstTokenMs = performance.now() - startedMs;
        completionTokens++;
        if (penalties) generated.push(step.value.token);
        const piece = assembler.push(step.value.token);
        const logprob = alternatives === undefined ? {} : { logprob: this.logprobEntry(step.value.token, step.value.confidence, step.value.probabilities, alternatives) };
        const probability = step.value.confidence === undefined ? {} : { probability: step.value.confidence };
        if (piece.stopped) {
          finishReason = 'stop';
          yield { token: step.value.token, text: piece.text, ...probability, ...logprob };
          break;
        }
        const text = completionTokens === maxTokens ? piece.text + assembler.finish() : piece.text;
        yield { token: step.value.token, text, ...probability, ...logprob };
      }
      if (signal?.aborted && finishReason !== 'stop') finishReason = 'cancelled';
      settle({ finishReason, promptTokens: promptTokens.length, completionTokens, timeToFirstTokenMs, totalMs: performance.now() - startedMs });
    } catch (caught) {
      const error = this.samplingFailureOf(caught, grammar, completionTokens);
      fail(error);
      throw error;
    } finally {
      // Stops node-llama-cpp from evaluating further; the consumer may have broken out early.
      await iterator.return(undefined);
      settle({ finishReason: 'cancelled', promptTokens: promptTokens.length, completionTokens, timeToFirstTokenMs, totalMs: performance.now() - startedMs });
    }
  }

  /**
   * A generated token's entry: its bytes and log probability, and the `count` most likely tokens
   * at its place, from the distribution it was sampled from (after logit_bias, penalties, top_k,
   * top_p and temperature; with greedy decoding, the model's own). `distribution` comes most
   * likely first; tokens it gives no chance (a grammar's, say) are no alternatives.
   */
  private logprobEntry(token: Token, probability: number, distribution: ReadonlyMap<Token, number> | undefined, count: number): TokenLogprob {
    const top: Array<[Token, number]> = [];
    for (const candidate of distribution ?? []) {
      if (top.length === count || candidate[1] <= 0) break;
      top.push(candidate);
    }
    const entry = (id: Token, chance: number) => {
      const { text, bytes } = this.tokenBytes.of(id);
      return { token: text, logprob: logprobOf(chance), bytes };
    };
    return { ...entry(token, probability), top_logprobs: top.map(([id, chance]) => entry(id, chance)) };
  }

  /**
   * A sample that failed (sampling-failure-guard.ts) in llama.cpp's words: under a grammar, the
   * answer reached a point where it allows nothing the model can write, which the same request
   * would reach again (refused, not retried); without one, an engine fault (retried elsewhere).
   */
  private samplingFailureOf(error: unknown, grammar: AnswerGrammar | undefined, completionTokens: number): unknown {
    if (!(error instanceof Error) || error.message !== SAMPLE_FAILED_MESSAGE) return error;
    const reason = this.samplingFailures.take() ?? 'no reason given';
    if (!grammar || !/grammar/i.test(reason)) return new ServerError(`the engine failed to sample a token: ${reason}`, { code: 'engine_error', cause: error });
    const { param, what } = grammarSourceOf(grammar);
    return new InvalidRequestError(
      `model ${this.info.modelName} wrote ${completionTokens} tokens of its answer and then had no token that ${what} allows next (llama.cpp: ${reason}); the schema asks for text this model cannot write`,
      { param, code: 'invalid_value', cause: error },
    );
  }

  async exportState(slot: Slot, options: { encoding?: SnapshotEncoding } = {}): Promise<Buffer> {
    const own = this.own(slot);
    const tokens = [...own.sequence.contextTokens];
    // Between decode steps, and ahead of them: llama.cpp saves under the context-wide lock, so
    // the other slots pause for the copy either way; through the gate the save waits for the
    // step running now only (waiting for the lock itself, it starved while others decoded). The
    // bytes are read back, and later sent to Redis, with the lock free.
    const payload = await withStateFile(this.stateDir, async (path) => {
      await this.gate.exclusive(() => own.sequence.saveStateToFile(path), true);
      return readFile(path);
    });
    return await wrapSnapshot(this.info.fingerprint, tokens, payload, { encoding: options.encoding ?? this.snapshots.encoding, memory: this.snapshots.memory });
  }

  async importState(slot: Slot, snapshot: Uint8Array): Promise<void> {
    const own = this.own(slot);
    const { header, payload } = await unwrapSnapshot(snapshot, { fingerprint: this.info.fingerprint, maxTokens: this.info.contextSize, memory: this.snapshots.memory });
    await own.sequence.clearHistory();
    try {
      await withStateFile(this.stateDir, async (path) => {
        await writeFile(path, payload);
        await this.gate.exclusive(() => own.sequence.loadStateFromFile(path, { acceptRisk: true }), true);
      });
    } catch (error) {
      await own.sequence.clearHistory();
      throw new SnapshotRejectedError('snapshot_garbage', 'the engine refused the snapshot payload', { cause: error });
    }
    const restored = own.sequence.contextTokens;
    if (restored.length !== header.tokenCount || tokenSequenceHash(restored) !== header.tokenHash) {
      await own.sequence.clearHistory();
      throw new SnapshotRejectedError('snapshot_token_mismatch', 'restored token sequence differs from the snapshot header');
    }
  }

  async close(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }

  private own(slot: Slot): LlamaSlot {
    const own = this.slots[slot.index];
    if (!own || own !== slot) throw new Error(`bug: slot ${slot.index} does not belong to this engine`);
    if (!own.acquired) throw new Error(`bug: slot ${slot.index} used without being acquired`);
    return own;
  }

  private assertFits(slot: LlamaSlot, newTokens: number): void {
    const total = slot.sequence.nextTokenIndex + newTokens;
    if (total > this.info.contextSize - 1) {
      throw new InvalidRequestError(
        `this request needs ${total} tokens of context plus room to generate, the model's context holds ${this.info.contextSize}`,
        { code: 'context_length_exceeded', param: 'messages' },
      );
    }
  }
}
