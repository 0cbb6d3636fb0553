/**
 * Renders a model's `tokenizer.chat_template` (Jinja) to text. The text is tokenized with
 * special-token parsing on, so role markers become their control tokens.
 */
import { Template } from '@huggingface/jinja';
import type { Tool } from '@bamba/shared';
import type { ChatTemplateMessage } from './engine.js';

export class ChatTemplate {
  private readonly template: Template;
  constructor(source: string, private readonly specialTokens: { bos: string; eos: string }) {
    this.template = new Template(source);
  }

  /**
   * Tools and tool calls go in OpenAI's shapes, which is what chat templates written for tool use
   * read (`tools`, a message's `tool_calls` and `tool_call_id`); `tools` only when there are some.
   */
  render(messages: readonly ChatTemplateMessage[], addGenerationPrompt: boolean, tools?: readonly Tool[]): string {
    return this.template.render({
      messages: messages.map((message) => ({
        role: message.role,
        content: message.content,
        ...(message.toolCalls ? { tool_calls: message.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })) } : {}),
        ...(message.toolCallId ? { tool_call_id: message.toolCallId } : {}),
      })),
      ...(tools && tools.length > 0 ? { tools: tools.map((tool) => ({ type: 'function', function: { name: tool.name, ...(tool.description !== undefined ? { description: tool.description } : {}), ...(tool.parameters ? { parameters: tool.parameters } : {}) } })) } : {}),
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.specialTokens.bos,
      eos_token: this.specialTokens.eos,
    });
  }
}
