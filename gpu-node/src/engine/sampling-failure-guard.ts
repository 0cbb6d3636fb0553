/**
 * Keeps a failed sample from ending the process.
 *
 * node-llama-cpp (3.21.1) samples inside its batch dispatcher, which it starts without awaiting
 * it (`void withLock(...)` in LlamaContext.dispatchPendingBatch). A sample that throws
 * (llama.cpp's grammar sampler does, "Unexpected empty grammar stack after accepting piece",
 * when an answer reaches a point where its grammar allows no token the model can write) then
 * rejects a promise nobody handles, which ends the process, and the sequence's evaluation never
 * settles. Measured on the tiny model with a grammar of one character it has no token for.
 *
 * The guard turns such a sample into the token id -1, which node-llama-cpp's evaluator reports
 * as an error of that evaluation ("Failed to sample next token", SAMPLE_FAILED_MESSAGE): the
 * request fails, its slot is released, the process and the other slots go on. The native error
 * is kept for the engine to name in its refusal.
 */
import { nativeContextOf, overrideNative } from './native-context.js';

/** What node-llama-cpp's evaluator throws for a sample that came back as -1. */
export const SAMPLE_FAILED_MESSAGE = 'Failed to sample next token';

/** Reasons kept for the engine to read (one per failed sample; more would be a failure nobody read). */
const KEPT_REASONS = 16;

export interface SamplingFailures {
  /** The oldest native sampler error not read yet, if any (samples of one batch can fail together). */
  take(): string | undefined;
}

/** Make a failed sample of `context` (a node-llama-cpp LlamaContext) fail its evaluation only. */
export function guardSamplingFailures(context: object): SamplingFailures {
  const native = nativeContextOf(context, 'sampling-failure-guard.ts');
  const sampleToken = native.sampleToken.bind(native);
  const reasons: string[] = [];
  // The shape of a sample's result: with the probability and confidence flags (always passed by
  // controlledEvaluate, which destructures it), a [token, probabilities, confidence] triple.
  const failed = (args: unknown[]) => (error: unknown) => {
    reasons.push(error instanceof Error ? error.message : String(error));
    if (reasons.length > KEPT_REASONS) reasons.shift();
    return args.length > 2 ? [-1, undefined, undefined] : -1;
  };
  overrideNative(native, 'sampleToken', (...args) => {
    try {
      return sampleToken(...args).then(undefined, failed(args));
    } catch (error) {
      return Promise.resolve(failed(args)(error));
    }
  });
  return {
    take: () => reasons.shift(),
  };
}
