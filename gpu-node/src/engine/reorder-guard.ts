/**
 * Keeps concurrent slots from reading each other's logits.
 *
 * When llama.cpp evaluates a hybrid (recurrent) model's batch, it splits it by sequence, so the
 * output rows can come out in another order than the batch's tokens. It records the row swaps
 * that put them back and applies them lazily, in place, on the first read of the logits
 * (`output_reorder()` in llama-context.cpp, run by every `llama_get_logits*` call). node-llama-cpp
 * (3.21.1) samples each sequence of a decoded batch on its own worker thread, so several threads
 * can apply the same swaps at once: a swap applied twice is undone, and a slot then samples
 * another slot's distribution. Measured on the tiny model, 4 concurrent greedy generations of 48
 * tokens: about one run in three handed one slot another's token.
 *
 * The guard lets the first sample after each decode run alone (it applies the swaps and clears
 * them); the other samples of that batch start once it is done, in parallel as before, and then
 * only read. It wraps node-llama-cpp's native context object (native-context.ts).
 */
import { nativeContextOf, overrideNative } from './native-context.js';

/** Make the first logits read after each decode of `context` (a node-llama-cpp LlamaContext) run alone. */
export function guardOutputReorder(context: object): void {
  const native = nativeContextOf(context, 'reorder-guard.ts');
  const decodeBatch = native.decodeBatch.bind(native);
  const sampleToken = native.sampleToken.bind(native);
  let firstReadPending = false;
  /** The first read of the current batch; the batch's other reads wait for it. */
  let firstRead: Promise<unknown> = Promise.resolve();
  overrideNative(native, 'decodeBatch', async (...args) => {
    const decoded = await decodeBatch(...args);
    firstReadPending = true;
    return decoded;
  });
  overrideNative(native, 'sampleToken', (...args) => {
    if (firstReadPending) {
      firstRead = sampleToken(...args);
      firstReadPending = false; // after the call: one that threw at once leaves the next as the first
      return firstRead;
    }
    const after = () => sampleToken(...args);
    return firstRead.then(after, after);
  });
}
