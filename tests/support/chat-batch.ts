/**
 * Runs a chat batch to its end through the official client: upload the lines, create the batch,
 * wait until it is no longer running, and read its output and error files back as parsed lines.
 */
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { TestStack } from './stack.js';

/** One line of a chat batch's input file, `body` being the request. */
export const chatBatchLine = (customId: string, body: Record<string, unknown>) => JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body });

export async function runChatBatch(client: OpenAI, stack: TestStack, lines: string[]) {
  const file = await client.files.create({ file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'batch.jsonl'), purpose: 'batch' });
  const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  const batch = await stack.waitFor('the batch to end', async () => {
    const now = await client.batches.retrieve(created.id);
    return ['completed', 'failed', 'expired', 'cancelled'].includes(now.status) ? now : undefined;
  }, 120_000);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- batch lines are JSON the tests look into
  const read = async (fileId: string | null | undefined): Promise<any[]> => (fileId ? (await (await client.files.content(fileId)).text()).trim().split('\n').map((text) => JSON.parse(text)) : []);
  return { batch, output: await read(batch.output_file_id), errors: await read(batch.error_file_id) };
}
