/** Sampling and stopping settings after validation: every default resolved. */
import { z } from 'zod';
import { MAX_TOP_LOGPROBS } from './logprobs.js';
import { outputFormatSchema } from './output-format.js';

/** Most tokens one `logit_bias` may name (bounds the work a request asks of the sampler). */
export const MAX_LOGIT_BIAS_TOKENS = 1024;

const TOKEN_ID = /^(0|[1-9][0-9]{0,8})$/;

export const logitBiasSchema = z
  .record(z.string(), z.number({ error: (issue) => (issue.code === 'invalid_type' ? 'logit_bias values must be numbers' : undefined) }).min(-100, 'logit_bias values must be at least -100').max(100, 'logit_bias values must be at most 100'))
  .superRefine((bias, context) => {
    const keys = Object.keys(bias);
    if (keys.length > MAX_LOGIT_BIAS_TOKENS) {
      context.addIssue({ code: 'custom', message: `logit_bias names at most ${MAX_LOGIT_BIAS_TOKENS} tokens, this one ${keys.length}` });
      return;
    }
    // zod's own record-key issue says only "Invalid key in record".
    const odd = keys.find((key) => !TOKEN_ID.test(key));
    if (odd !== undefined) context.addIssue({ code: 'custom', path: [odd], message: `logit_bias keys are token ids (whole numbers written as strings), not '${odd.slice(0, 40)}'` });
  });

/** OpenAI's presence and frequency penalties: −2 to 2. */
export const penaltySchema = (name: string) => z.number({ error: (issue) => (issue.code === 'invalid_type' ? `${name} must be a number` : undefined) }).min(-2, `${name} must be at least -2`).max(2, `${name} must be at most 2`);

export const samplingParamsSchema = z.object({
  /** Upper bound on generated tokens; the engine caps it further by free context. */
  maxTokens: z.number().int().min(1),
  /**
   * `maxTokens` is the client's own (`max_tokens`, `max_output_tokens`): a prompt that leaves
   * less room than that is refused, as OpenAI does, instead of capped. Absent: the default.
   */
  maxTokensExplicit: z.literal(true).optional(),
  /** 0 = greedy. */
  temperature: z.number().min(0).max(2),
  /** 1 = off. */
  topP: z.number().gt(0).max(1),
  /** 0 = off. */
  topK: z.number().int().min(0),
  /** Tokens less likely than `minP` × the most likely one are dropped. Absent: off. */
  minP: z.number().gt(0).max(1).optional(),
  /** Sampling seed; only matters when temperature > 0. */
  seed: z.number().int().min(0),
  /** Generation ends before the first occurrence of any of these. */
  stop: z.array(z.string().min(1)).max(4).readonly(),
  /**
   * OpenAI's penalties: a token's logit drops by `presencePenalty` once it was generated in this
   * answer, and by `frequencyPenalty` for every time it was. Absent: 0.
   */
  presencePenalty: penaltySchema('presencePenalty').optional(),
  frequencyPenalty: penaltySchema('frequencyPenalty').optional(),
  /** Added to these token ids' logits (OpenAI's `logit_bias`: ids as strings). Absent: none. */
  logitBias: logitBiasSchema.optional(),
  /**
   * Each generated token's log probability, with this many of the most likely tokens at its
   * place (OpenAI's `logprobs` and `top_logprobs`). Absent: none.
   */
  logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).optional(),
  /** The answer is held to JSON or to a JSON Schema (structured outputs). Absent: free text. */
  format: outputFormatSchema.optional(),
});

export type SamplingParams = z.infer<typeof samplingParamsSchema>;
