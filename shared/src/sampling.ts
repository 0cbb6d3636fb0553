/** Sampling and stopping settings after validation: every default resolved. */
export interface SamplingParams {
  /** Upper bound on generated tokens; the engine caps it further by free context. */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
  /** Sampling seed; only matters when temperature > 0. */
  seed: number;
  /** Generation ends before the first occurrence of any of these. */
  stop: readonly string[];
}
