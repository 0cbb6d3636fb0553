/**
 * Many slots decoding at once, timed over the window in which every one of them decodes: from
 * the moment the last slot produced its first token to the moment the first slot finished. Each
 * slot's prompt (minus its last token) is evaluated beforehand, so the window holds decode steps
 * only, never a prompt's evaluation.
 */
import { GREEDY, type Engine, type Slot } from '@bamba/gpu-node';

export interface DecodeTogetherResult {
  slots: number;
  /** Slots that produced the end-of-text token within two tokens (not in the window). */
  endedEarly: number;
  /** Tokens per second of all slots together, inside the window. */
  tokensPerSecond: number;
  /** Decode steps per second (each step gives every slot one token). */
  stepsPerSecond: number;
  windowSeconds: number;
  tokensInWindow: number;
}

/** The prompt for slot `index`: a phrase long enough for any length, shifted per slot. */
export function benchPrompt(engine: Engine, tokens: number, index = 0): number[] {
  const text = 'The quick brown fox jumps over the lazy dog. ';
  const needed = Math.max(tokens * 2, 64);
  return engine.tokenize(text.repeat(Math.ceil((needed + index) / text.length)).slice(index % text.length)).slice(0, tokens);
}

/** Evaluates `prompts[i]` into `slots[i]` (all but the last token), then decodes `answerTokens` on all of them together. */
export async function decodeTogether(engine: Engine, slots: readonly Slot[], prompts: readonly number[][], answerTokens: number): Promise<DecodeTogetherResult> {
  if (prompts.length !== slots.length) throw new Error('one prompt per slot');
  for (const [index, slot] of slots.entries()) {
    const prompt = prompts[index]!;
    if (prompt.length > 1) await engine.evaluate(slot, prompt.slice(0, -1));
  }
  const times: number[][] = slots.map(() => []);
  await Promise.all(slots.map(async (slot, index) => {
    const prompt = prompts[index]!;
    for await (const _token of engine.generate(slot, prompt.slice(-1), { ...GREEDY, maxTokens: answerTokens })) times[index]!.push(performance.now());
  }));
  // Random weights can pick the end-of-text token at any step: a slot that ends within its first
  // two tokens is left out of the window (and counted), the others are timed as they decode.
  const decoding = times.filter((list) => list.length >= 2);
  if (decoding.length === 0) throw new Error('every slot ended within two tokens: no decode window to time');
  const start = Math.max(...decoding.map((list) => list[0]!));
  const end = Math.min(...decoding.map((list) => list.at(-1)!));
  if (end <= start) throw new Error('the slots never decoded all together: raise the answer length');
  const tokensInWindow = decoding.reduce((sum, list) => sum + list.filter((time) => time > start && time <= end).length, 0);
  const windowSeconds = (end - start) / 1000;
  return { slots: slots.length, endedEarly: slots.length - decoding.length, tokensPerSecond: tokensInWindow / windowSeconds, stepsPerSecond: tokensInWindow / decoding.length / windowSeconds, windowSeconds, tokensInWindow };
}
