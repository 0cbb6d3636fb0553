/**
 * Log probabilities of an answer's tokens (OpenAI's `logprobs`): one entry per generated token,
 * made by the gpu-node (which has the vocabulary), carried on the token deltas, and shown by the
 * gateway and the batch workers in chat's shape (`choices[].logprobs.content`) or in the legacy
 * completions' shape.
 */
import { z } from 'zod';

/** Most alternatives per token: chat's `top_logprobs` (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;
/** Most alternatives per token on the legacy completions (its `logprobs`, OpenAI's limit). */
export const MAX_COMPLETION_LOGPROBS = 5;
/** A probability of 0 as OpenAI writes it (JSON has no -Infinity). */
export const LOGPROB_FLOOR = -9999;

/** A token's text (U+FFFD where its bytes are part of a character), its log probability, and its bytes. */
const alternativeSchema = z.object({ token: z.string(), logprob: z.number(), bytes: z.array(z.number().int().min(0).max(255)) });
/** One generated token, and the most likely tokens at its place (most likely first). */
export const tokenLogprobSchema = alternativeSchema.extend({ top_logprobs: z.array(alternativeSchema).max(MAX_TOP_LOGPROBS) });
export type TokenLogprob = z.infer<typeof tokenLogprobSchema>;

/** A probability's natural log, floored as OpenAI's. */
export const logprobOf = (probability: number): number => (probability > 0 ? Math.max(LOGPROB_FLOOR, Math.log(probability)) : LOGPROB_FLOOR);

/** Chat's `choices[].logprobs` (a chunk's: the entries of its tokens), as they travel. */
export function chatLogprobs(entries: readonly TokenLogprob[]) {
  return { content: entries, refusal: null };
}

/**
 * The legacy completions' `choices[].logprobs`; `offset`: where the first entry's text begins in
 * the answer (a stream's later chunks go on from the earlier ones').
 */
export function completionLogprobs(entries: readonly TokenLogprob[], offset = 0) {
  const textOffset: number[] = [];
  let at = offset;
  for (const entry of entries) {
    textOffset.push(at);
    at += entry.token.length;
  }
  return {
    tokens: entries.map((entry) => entry.token),
    token_logprobs: entries.map((entry) => entry.logprob),
    // The sampled token always among them, as OpenAI's (so up to `logprobs` + 1).
    top_logprobs: entries.map((entry) => ({ ...Object.fromEntries(entry.top_logprobs.map((alternative) => [alternative.token, alternative.logprob])), [entry.token]: entry.logprob })),
    text_offset: textOffset,
  };
}
