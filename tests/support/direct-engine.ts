/** The engine called in-process on the tiny model: the reference the served output must equal. */
import { createLlamaEngine, GREEDY, type ChatTemplateMessage, type Engine, type GenerationParams } from '@bamba/gpu-node';
import { DEFAULT_NODE_ENV, TINY_MODEL_PATH } from './stack.js';

export async function startDirectEngine(options: { slots?: number; contextSize?: number; modelPath?: string } = {}): Promise<Engine> {
  return createLlamaEngine({
    modelPath: options.modelPath ?? TINY_MODEL_PATH,
    device: 'cpu',
    slots: options.slots ?? Number(DEFAULT_NODE_ENV.BAMBA_SLOTS),
    contextSize: options.contextSize ?? Number(DEFAULT_NODE_ENV.BAMBA_CONTEXT_SIZE),
    threads: 1,
  });
}

/** Greedy text for a chat (messages) or completion (string) prompt. */
export async function directGreedy(engine: Engine, input: ChatTemplateMessage[] | string, maxTokens: number, stop: string[] = [], more: Partial<GenerationParams> = {}): Promise<string> {
  const slot = engine.acquireSlot()!;
  try {
    const prompt = typeof input === 'string' ? engine.tokenize(input) : engine.tokenizeChat(input);
    let text = '';
    for await (const generated of engine.generate(slot, prompt, { ...GREEDY, ...more, maxTokens, stop })) text += generated.text;
    return text;
  } finally {
    await engine.releaseSlot(slot);
  }
}
