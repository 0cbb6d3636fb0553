/**
 * The llama.cpp engine on the tiny model: slots, batching, sampling limits, cancellation and
 * snapshot export/import within one process (tests/engine-state.test.ts covers a fresh process).
 */
import { resolve } from 'node:path';
import { decodeSnapshot, encodeSnapshotHeader, SnapshotCompression, SnapshotRejectedError, type SnapshotRejection } from '@bamba/shared';
import { LlamaGrammar, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCachedModel } from '@bamba/model-gen';
import { GREEDY, type Engine, type GenerationParams, type Slot } from './engine.js';
import { payloadChecksum, tokenSequenceHash } from '../state/snapshot-codec.js';
import { createLlamaEngine } from './llama-engine.js';

const CACHE_DIR = resolve('.cache');
const SLOTS = 4;
let engine: Engine;

beforeAll(async () => {
  engine = await createLlamaEngine({ modelPath: ensureCachedModel(CACHE_DIR, 'tiny', 42), device: 'cpu', slots: SLOTS, contextSize: 1024, threads: 1 });
});
afterAll(async () => engine?.close());

async function run(target: Engine, slot: Slot, prompt: readonly number[], params: Partial<GenerationParams> & { maxTokens: number }, signal?: AbortSignal) {
  const stream = target.generate(slot, prompt, { ...GREEDY, ...params }, signal, { probabilities: true });
  const tokens: number[] = [];
  const probabilities: number[] = [];
  let text = '';
  for await (const generated of stream) {
    text += generated.text;
    if (generated.token === null) continue; // the text held back at the end, no token
    tokens.push(generated.token);
    if (generated.probability === undefined) throw new Error('generate was asked for probabilities');
    probabilities.push(generated.probability);
  }
  return { tokens, probabilities, text, summary: await stream.summary };
}

/** Generate on a fresh slot and give the slot back. */
async function reference(prompt: readonly number[], params: Partial<GenerationParams> & { maxTokens: number }) {
  const slot = engine.acquireSlot()!;
  try {
    return await run(engine, slot, prompt, params);
  } finally {
    await engine.releaseSlot(slot);
  }
}

const chat = (content: string) => engine.tokenizeChat([{ role: 'user', content }]);

async function expectRejected(promise: Promise<unknown>, code: SnapshotRejection): Promise<void> {
  const error = await promise.then(() => null, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(SnapshotRejectedError);
  expect((error as SnapshotRejectedError).code).toBe(code);
}

describe('LlamaEngine', () => {
  it('hands out at most the configured number of slots', async () => {
    const slots = Array.from({ length: SLOTS }, () => engine.acquireSlot());
    expect(slots.every((slot) => slot !== null)).toBe(true);
    expect(engine.acquireSlot()).toBeNull();
    expect(engine.freeSlotCount()).toBe(0);
    for (const slot of slots) await engine.releaseSlot(slot!);
    expect(engine.freeSlotCount()).toBe(SLOTS);
  });

  it('renders the chat template with role markers as single control tokens', () => {
    const tokens = chat('hi');
    const startOfRole = engine.tokenize('<|start_of_role|>', { special: true });
    expect(startOfRole).toHaveLength(1);
    expect(tokens[0]).toBe(startOfRole[0]);
    expect(tokens.filter((token) => token === startOfRole[0])).toHaveLength(2); // user turn + assistant prompt
  });

  it('gives 4 concurrent generations the same tokens as the same 4 run one at a time (up to a tie broken the other way)', async () => {
    // Prompts of equal length: llama.cpp splits a hybrid model's batch into equal-length pieces
    // per sequence, so prompts of different lengths are prefilled in other chunk sizes when
    // batched than alone, and float rounding then differs (batch variance, not state mixing).
    // Decode steps batched across slots round slightly differently from lone ones (~2e-4), so
    // a random model's greedy choice may flip where two tokens are nearly tied. Allowed is only
    // that: the same tokens with the same probabilities up to a first difference where both
    // runs' chosen tokens had the same probability (a tie broken the other way). State mixed
    // between sequences would change the distributions, not only break a tie; so would a slot
    // sampling another slot's logits, which llama.cpp's lazy output reorder raced into about one
    // round in three before reorder-guard.ts, hence many rounds (each takes ~0.1 s).
    const prompts = [0, 1, 2, 3].map((index) => chat(`Prompt ${index}: tell me about state.`));
    const sequential = [];
    for (const prompt of prompts) sequential.push(await reference(prompt, { maxTokens: 48 }));
    for (let round = 0; round < 20; round++) {
      const slots = prompts.map(() => engine.acquireSlot()!);
      const concurrent = await Promise.all(prompts.map((prompt, index) => run(engine, slots[index]!, prompt, { maxTokens: 48 })));
      for (const slot of slots) await engine.releaseSlot(slot);
      for (const [index, alone] of sequential.entries()) {
        const batched = concurrent[index]!;
        const firstDifference = alone.tokens.findIndex((token, position) => batched.tokens[position] !== token);
        const agreed = firstDifference === -1 ? alone.tokens.length : firstDifference;
        for (let position = 0; position < agreed; position++) expect(Math.abs(batched.probabilities[position]! - alone.probabilities[position]!)).toBeLessThan(1e-3);
        if (firstDifference === -1) {
          expect(batched.tokens).toEqual(alone.tokens);
        } else {
          expect(Math.abs(batched.probabilities[firstDifference]! - alone.probabilities[firstDifference]!), `round ${round}: prompt ${index} diverged at token ${firstDifference} without a tie`).toBeLessThan(1e-3);
        }
      }
    }
    // Non-trivial runs: each generates text (a run may end early on end-of-text).
    expect(sequential.every((result) => result.tokens.length >= 8)).toBe(true);
    expect(new Set(sequential.map((result) => result.tokens.join(','))).size).toBeGreaterThan(1);
  });

  it('restores a snapshot from slot 0 into slot 2 without disturbing other live sequences', async () => {
    const promptA = chat('snapshot me');
    const promptB = chat('leave me alone');
    const referenceA = await reference(promptA, { maxTokens: 36 });
    const referenceB = await reference(promptB, { maxTokens: 26 });
    const [slot0, slot1, slot2] = [engine.acquireSlot()!, engine.acquireSlot()!, engine.acquireSlot()!];
    try {
      const first = await run(engine, slot0, promptA, { maxTokens: 20 });
      const other = await run(engine, slot1, promptB, { maxTokens: 10 });
      expect(first.tokens).toEqual(referenceA.tokens.slice(0, 20));
      const snapshot = await engine.exportState(slot0);
      await engine.importState(slot2, snapshot);
      expect(engine.slotTokens(slot2)).toEqual(engine.slotTokens(slot0));
      // Continue from the restored slot, the original slot and the bystander, all at once.
      const [restored, original, bystander] = await Promise.all([
        run(engine, slot2, [first.tokens.at(-1)!], { maxTokens: 16 }),
        run(engine, slot0, [first.tokens.at(-1)!], { maxTokens: 16 }),
        run(engine, slot1, [other.tokens.at(-1)!], { maxTokens: 16 }),
      ]);
      expect(restored.tokens).toEqual(referenceA.tokens.slice(20, 36));
      expect(original.tokens).toEqual(referenceA.tokens.slice(20, 36));
      expect(bystander.tokens).toEqual(referenceB.tokens.slice(10, 26));
    } finally {
      for (const slot of [slot0, slot1, slot2]) await engine.releaseSlot(slot);
    }
  });

  it('restores a snapshot stored with bf16 recurrent state and continues as the original slot does', async () => {
    const prompt = chat('store me in half the bytes');
    const [slot0, slot2] = [engine.acquireSlot()!, engine.acquireSlot()!];
    try {
      const first = await run(engine, slot0, prompt, { maxTokens: 20 });
      const f32 = await engine.exportState(slot0, { encoding: 'f32' });
      const bf16 = await engine.exportState(slot0, { encoding: 'bf16' });
      expect(decodeSnapshot(f32).header.compression).toBe(SnapshotCompression.none);
      expect(decodeSnapshot(bf16).header.compression).toBe(SnapshotCompression.recurrentBf16);
      // The tiny model's state is ~96 % recurrent: bf16 stores it in a little over half.
      expect(bf16.length / f32.length).toBeGreaterThan(0.5);
      expect(bf16.length / f32.length).toBeLessThan(0.55);
      await engine.importState(slot2, bf16);
      expect(engine.slotTokens(slot2)).toEqual(engine.slotTokens(slot0));
      const restored = await run(engine, slot2, [first.tokens.at(-1)!], { maxTokens: 32 });
      const original = await run(engine, slot0, [first.tokens.at(-1)!], { maxTokens: 32 });
      expect(restored.tokens).toHaveLength(32);
      // Measured, not guaranteed: on this prompt the rounded state gives the same greedy tokens
      // (bench case snapshot-drift measures how often that holds over 256 tokens).
      expect(restored.tokens).toEqual(original.tokens);
    } finally {
      for (const slot of [slot0, slot2]) await engine.releaseSlot(slot);
    }
  });

  it('rejects a bf16 snapshot whose checksummed payload is not engine state', async () => {
    const slot = engine.acquireSlot()!;
    try {
      await run(engine, slot, chat('not state'), { maxTokens: 4 });
      const payload = Uint8Array.from({ length: 4096 }, (_, index) => (index * 31 + 7) & 0xff);
      const header = encodeSnapshotHeader({
        compression: SnapshotCompression.recurrentBf16,
        fingerprint: engine.info.fingerprint,
        tokenCount: 0,
        tokenHash: tokenSequenceHash([]),
        payloadChecksum: await payloadChecksum(payload),
        payloadBytes: payload.length,
      });
      await expectRejected(engine.importState(slot, Buffer.concat([header, payload])), 'snapshot_garbage');
      // Refused before llama.cpp saw a byte: the slot's own state is untouched.
      expect(engine.slotTokens(slot).length).toBeGreaterThan(0);
    } finally {
      await engine.releaseSlot(slot);
    }
  });

  describe('refused snapshots leave the slot usable', () => {
    let snapshot: Buffer;
    let expected: number[];
    const prompt = () => chat('corrupt me');

    beforeAll(async () => {
      const slot = engine.acquireSlot()!;
      await run(engine, slot, prompt(), { maxTokens: 12 });
      snapshot = await engine.exportState(slot);
      await engine.releaseSlot(slot);
      expected = (await reference(prompt(), { maxTokens: 16 })).tokens;
    });

    async function expectSlotStillWorks(slot: Slot): Promise<void> {
      expect(engine.slotTokens(slot)).toEqual([]);
      expect((await run(engine, slot, prompt(), { maxTokens: 16 })).tokens).toEqual(expected);
    }

    const cases: Array<[string, () => Uint8Array, SnapshotRejection]> = [
      ['a flipped payload byte', () => { const bytes = Buffer.from(snapshot); bytes[bytes.length - 100]! ^= 0x40; return bytes; }, 'snapshot_checksum_mismatch'],
      ['a truncated buffer', () => snapshot.subarray(0, snapshot.length - 1000), 'snapshot_truncated'],
      ['random bytes', () => Uint8Array.from({ length: 4096 }, (_, index) => (index * 7919 + 13) & 0xff), 'snapshot_garbage'],
      ['an empty buffer', () => new Uint8Array(0), 'snapshot_garbage'],
    ];
    for (const [name, make, code] of cases) {
      it(`rejects ${name} as ${code}`, async () => {
        const slot = engine.acquireSlot()!;
        try {
          await run(engine, slot, chat('something already here'), { maxTokens: 4 }); // a slot with state in it
          await expectRejected(engine.importState(slot, make()), code);
          await engine.releaseSlot(slot);
          const fresh = engine.acquireSlot()!;
          expect(fresh).toBe(slot);
          await expectSlotStillWorks(fresh);
        } finally {
          await engine.releaseSlot(slot);
        }
      });
    }

    it('rejects a snapshot from a model generated with another seed (fingerprint mismatch)', async () => {
      const otherModel = await createLlamaEngine({ modelPath: ensureCachedModel(CACHE_DIR, 'tiny', 43), device: 'cpu', slots: SLOTS, contextSize: 1024, threads: 1 });
      try {
        expect(otherModel.info.fingerprint).not.toBe(engine.info.fingerprint);
        const otherSlot = otherModel.acquireSlot()!;
        await run(otherModel, otherSlot, chat('from elsewhere'), { maxTokens: 8 });
        const foreign = await otherModel.exportState(otherSlot);
        const slot = engine.acquireSlot()!;
        try {
          await expectRejected(engine.importState(slot, foreign), 'snapshot_fingerprint_mismatch');
          await expectSlotStillWorks(slot);
        } finally {
          await engine.releaseSlot(slot);
        }
      } finally {
        await otherModel.close();
      }
    });

    it('rejects a snapshot from the same model with another slot count (state layout differs)', async () => {
      const twoSlots = await createLlamaEngine({ modelPath: ensureCachedModel(CACHE_DIR, 'tiny', 42), device: 'cpu', slots: 2, contextSize: 1024, threads: 1 });
      try {
        expect(twoSlots.info.fingerprint).not.toBe(engine.info.fingerprint);
        const slot = engine.acquireSlot()!;
        try {
          const fromTwo = twoSlots.acquireSlot()!;
          await run(twoSlots, fromTwo, chat('layout'), { maxTokens: 4 });
          await expectRejected(engine.importState(slot, await twoSlots.exportState(fromTwo)), 'snapshot_fingerprint_mismatch');
        } finally {
          await engine.releaseSlot(slot);
        }
      } finally {
        await twoSlots.close();
      }
    });
  });

  it('re-tokenizes every generated answer to the same tokens', async () => {
    for (const [index, content] of ['alpha', 'beta gamma', 'x', 'A longer question, with punctuation?'].entries()) {
      const answer = await reference(chat(content), { maxTokens: 64, temperature: 1.2, seed: index + 1, topK: 0, topP: 1 });
      expect(answer.tokens.length).toBeGreaterThan(0);
      expect(engine.detokenize(answer.tokens)).toBe(answer.text);
      expect(engine.tokenize(answer.text)).toEqual(answer.tokens);
      // Re-sent as history, the answer is the same token run inside the rendered template.
      const history = engine.tokenizeChat([{ role: 'user', content }, { role: 'assistant', content: answer.text }], { addGenerationPrompt: false });
      const prompt = chat(content);
      expect(history.slice(prompt.length, prompt.length + answer.tokens.length)).toEqual(answer.tokens);
    }
  });

  it('samples reproducibly with a seed and differently with another', async () => {
    const params = { maxTokens: 32, temperature: 1, topK: 0, topP: 1 };
    const first = await reference(chat('dice'), { ...params, seed: 5 });
    const again = await reference(chat('dice'), { ...params, seed: 5 });
    const other = await reference(chat('dice'), { ...params, seed: 6 });
    expect(again.tokens).toEqual(first.tokens);
    expect(other.tokens).not.toEqual(first.tokens);
  });

  it('stops before a stop string and leaves it out of the text', async () => {
    const full = await reference(chat('stop here'), { maxTokens: 40 });
    const stop = full.text.slice(10, 13);
    const cut = await reference(chat('stop here'), { maxTokens: 40, stop: [stop] });
    expect(cut.summary.finishReason).toBe('stop');
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it('stops within one decode step of an abort and frees the slot on release', async () => {
    const slot = engine.acquireSlot()!;
    const controller = new AbortController();
    const stream = engine.generate(slot, chat('cancel me'), { ...GREEDY, maxTokens: 500 }, controller.signal);
    let received = 0;
    for await (const _token of stream) {
      if (++received === 5) controller.abort();
    }
    const summary = await stream.summary;
    expect(summary.finishReason).toBe('cancelled');
    expect(summary.completionTokens).toBe(5);
    await engine.releaseSlot(slot);
    expect(engine.freeSlotCount()).toBe(SLOTS);
  });

  it('reports counts and caps generation at the context size', async () => {
    const slot = engine.acquireSlot()!;
    try {
      const prompt = engine.tokenize('x'.repeat(1000));
      const result = await run(engine, slot, prompt, { maxTokens: 100 });
      expect(result.summary).toMatchObject({ finishReason: 'length', promptTokens: 1000, completionTokens: 1024 - 1000 });
      expect(result.summary.timeToFirstTokenMs).toBeGreaterThan(0);
    } finally {
      await engine.releaseSlot(slot);
    }
  });

  it('refuses an explicit max_tokens the context has no room for, and takes one that just fits', async () => {
    const slot = engine.acquireSlot()!;
    try {
      const prompt = engine.tokenize('x'.repeat(1000));
      expect(() => engine.generate(slot, prompt, { ...GREEDY, maxTokens: 1024 - 1000 + 1, maxTokensExplicit: true })).toThrow(
        expect.objectContaining({ code: 'context_length_exceeded', message: expect.stringContaining('you requested 1025 tokens (1000 in the messages, 25 in the completion)') }),
      );
      const fits = await run(engine, slot, prompt, { maxTokens: 1024 - 1000, maxTokensExplicit: true });
      expect(fits.summary).toMatchObject({ finishReason: 'length', completionTokens: 1024 - 1000 });
    } finally {
      await engine.releaseSlot(slot);
    }
  });

  /** Greedy answer to one chat prompt in a slot of its own. */
  const answerIn = async (content: string, params: Partial<GenerationParams> & { maxTokens: number }) => {
    const slot = engine.acquireSlot()!;
    try {
      return await run(engine, slot, chat(content), params);
    } finally {
      await engine.releaseSlot(slot);
    }
  };

  it('applies logit_bias: +100 makes greedy pick that token every time, -100 keeps a token out', async () => {
    const a = engine.tokenize('a')[0]!;
    expect((await answerIn('bias me', { maxTokens: 12, logitBias: { [a]: 100 } })).text).toBe('a'.repeat(12));
    const banned = (await answerIn('ban one', { maxTokens: 24 })).tokens[0]!;
    expect((await answerIn('ban one', { maxTokens: 24, logitBias: { [banned]: -100 } })).tokens).not.toContain(banned);
    const slot = engine.acquireSlot()!;
    try {
      expect(() => engine.generate(slot, chat('x'), { ...GREEDY, maxTokens: 1, logitBias: { [engine.info.vocabSize]: 1 } })).toThrow(
        expect.objectContaining({ code: 'invalid_value', param: 'logit_bias' }),
      );
      // End of text (0) and a role marker (1) of the tiny model's vocabulary: refused, not ignored.
      for (const special of [0, 1]) {
        expect(() => engine.generate(slot, chat('x'), { ...GREEDY, maxTokens: 1, logitBias: { [special]: -100 } })).toThrow(
          expect.objectContaining({ code: 'unsupported_value', param: 'logit_bias' }),
        );
      }
    } finally {
      await engine.releaseSlot(slot);
    }
  });

  it("applies presence and frequency penalties to the answer's own tokens: the first token is unchanged, repeats get rarer", async () => {
    const answer = async (params: Partial<GenerationParams>) => (await answerIn('repeat yourself', { maxTokens: 64, ...params })).tokens;
    const repeats = (tokens: number[]) => tokens.length - new Set(tokens).size;
    const plain = await answer({});
    const penalized = await answer({ presencePenalty: 2, frequencyPenalty: 2 });
    const encouraged = await answer({ frequencyPenalty: -2 });
    expect(penalized[0]).toBe(plain[0]);
    expect(repeats(penalized)).toBeLessThan(repeats(plain));
    expect(repeats(encouraged)).toBeGreaterThan(repeats(plain));
    expect(await answer({ presencePenalty: 2, frequencyPenalty: 2 })).toEqual(penalized); // still deterministic
  });

  it('refuses a prompt longer than the context with a typed error', async () => {
    const slot = engine.acquireSlot()!;
    try {
      expect(() => engine.generate(slot, engine.tokenize('y'.repeat(1100)), { ...GREEDY, maxTokens: 1 })).toThrow(
        expect.objectContaining({ type: 'invalid_request_error', code: 'context_length_exceeded' }),
      );
      expect((await run(engine, slot, chat('still fine'), { maxTokens: 3 })).tokens).toHaveLength(3);
    } finally {
      await engine.releaseSlot(slot);
    }
  });

  it('refuses an answer whose grammar allows nothing the model can write next, and serves on', async () => {
    // The grammar checks leave no such dead end for a request to reach on these models, so the
    // test puts one in the engine's grammar cache under a format's key (sampling-failure-guard.ts).
    const format = { type: 'json_schema', name: 'dead_end', schema: { type: 'object' } } as const;
    const llama = (engine as unknown as { model: { llama: Llama } }).model.llama;
    const kept = (engine as unknown as { grammars: { kept: Map<string, Promise<LlamaGrammar>> } }).grammars.kept;
    kept.set(JSON.stringify(format), Promise.resolve(new LlamaGrammar(llama, { grammar: 'root ::= "{" "é"' })));
    const slot = engine.acquireSlot()!;
    try {
      // Sampled (greedy would pick the end-of-text token from nothing allowed, and stop).
      const refused = await run(engine, slot, chat('write json'), { maxTokens: 8, format, temperature: 0.8, seed: 7 }).then(() => null, (error: unknown) => error);
      expect(refused).toMatchObject({ type: 'invalid_request_error', status: 400, code: 'invalid_value', param: 'response_format', retryable: false });
      expect((refused as Error).message).toMatch(/wrote 1 tokens of its answer and then had no token that the response format's schema allows next \(llama\.cpp: .*grammar/);
    } finally {
      kept.delete(JSON.stringify(format));
      await engine.releaseSlot(slot);
    }
    expect((await reference(chat('still fine'), { maxTokens: 3 })).tokens).toHaveLength(3);
  });
});
