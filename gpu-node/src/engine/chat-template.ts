/**
 * Renders a model's `tokenizer.chat_template` (Jinja) to text. The text is tokenized with
 * special-token parsing on, so role markers become their control tokens.
 */
import { Template } from '@huggingface/jinja';
import type { ChatTemplateMessage } from './engine.js';

export class ChatTemplate {
  private readonly template: Template;
  constructor(source: string, private readonly specialTokens: { bos: string; eos: string }) {
    this.template = new Template(source);
  }

  render(messages: readonly ChatTemplateMessage[], addGenerationPrompt: boolean): string {
    return this.template.render({
      messages: messages.map((message) => ({ role: message.role, content: message.content })),
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.specialTokens.bos,
      eos_token: this.specialTokens.eos,
    });
  }
}
