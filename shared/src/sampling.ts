/** Sampling and stopping settings after validation: every default resolved. */
import { z } from 'zod';

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
  /** Sampling seed; only matters when temperature > 0. */
  seed: z.number().int().min(0),
  /** Generation ends before the first occurrence of any of these. */
  stop: z.array(z.string().min(1)).max(4).readonly(),
});

export type SamplingParams = z.infer<typeof samplingParamsSchema>;
