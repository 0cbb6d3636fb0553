/**
 * Keeps only the most likely tokens of a sample's distribution.
 *
 * Asked for probabilities, node-llama-cpp (3.21.1) hands back a sample's whole candidate list,
 * sorted most likely first (llama.cpp's sampler sorts it), and turns it into a Map on the event
 * loop every slot shares: with greedy decoding that is the whole vocabulary, 128K entries for
 * Bamba's, for every token. A log probability entry shows at most `count` alternatives, so the
 * list is cut to them as it comes back, before the Map is made. (The native side still writes the
 * whole list out: see BENCHMARKS.md, vocabulary-work.)
 */
import { nativeContextOf, overrideNative } from './native-context.js';

/** Cut the probabilities of every sample of `context` (a node-llama-cpp LlamaContext) to the `count` most likely. */
export function keepTopProbabilities(context: object, count: number): void {
  const native = nativeContextOf(context, 'top-probabilities.ts');
  const sampleToken = native.sampleToken.bind(native);
  overrideNative(native, 'sampleToken', (...args) => {
    // (batchLogitIndex, sampler, probabilities?, confidence?): most samples ask for none, and pass untouched.
    if (args[2] !== true) return sampleToken(...args);
    // [token, probabilities (token, probability pairs, flat), confidence].
    return sampleToken(...args).then((result) => (Array.isArray(result) && Array.isArray(result[1]) && result[1].length > 2 * count
      ? [result[0], result[1].slice(0, 2 * count), result[2]]
      : result));
  });
}
