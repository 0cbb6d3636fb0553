/**
 * Which prefixes a batch's chat requests share at a message boundary (the same system prompt
 * and few-shot examples, say), so each is evaluated once: the batch seeds the state at that
 * boundary (a prefill-only job) and the requests then resume from it through the prefix cache.
 * Each request takes the longest prefix it shares with at least one other request of the same
 * model, within the boundaries a request probes. A seed costs a job and a saved state, so only
 * prefixes of some length are seeded, and only the most shared ones.
 */
import { createHash } from 'node:crypto';
import { PROBED_MESSAGE_BOUNDARIES, type BatchItem, type ChatMessage } from '@bamba/shared';

/** Shorter prefixes (in characters of content) are cheaper to evaluate again than to seed. */
export const MIN_SHARED_PREFIX_CHARS = 64;
/** Prefixes seeded per batch at most (the most shared first). */
export const MAX_SEEDS_PER_BATCH = 32;

export interface SharedPrefix {
  /** A stable name of the prefix (model and messages), for its seed job's id. */
  key: string;
  model: string;
  /** The messages up to the shared boundary. */
  messages: ChatMessage[];
  /** Requests that will resume from it. */
  requests: number;
}

/** Hashes of each prefix of `messages` (1 … n messages), each built on the one before. */
function prefixHashes(model: string, messages: readonly ChatMessage[]): string[] {
  const hashes: string[] = [];
  let previous = model;
  for (const message of messages) {
    previous = createHash('sha256').update(previous).update('\u0000').update(message.role).update('\u0000').update(message.content).digest('hex');
    hashes.push(previous);
  }
  return hashes;
}

export function sharedPrefixes(items: readonly BatchItem[]): SharedPrefix[] {
  // Requests with tools are left out: the tools are part of their prompt, which the hashes do not hold.
  const seedable = (input: BatchItem['request']['input']) => input.kind === 'chat' && input.messages.length >= 2 && !input.tools && !input.messages.some((message) => message.toolCalls);
  const chats = items.flatMap((item) => (item.request.input.kind === 'chat' && seedable(item.request.input) ? [{ model: item.request.model, messages: item.request.input.messages }] : []));
  const hashed = chats.map((chat) => ({ ...chat, hashes: prefixHashes(chat.model, chat.messages) }));
  const seen = new Map<string, number>();
  for (const chat of hashed) for (const hash of chat.hashes.slice(0, -1)) seen.set(hash, (seen.get(hash) ?? 0) + 1);
  const chosen = new Map<string, SharedPrefix>();
  for (const chat of hashed) {
    const length = chat.messages.length;
    // Longest first: a proper prefix within the boundaries a request probes.
    for (let count = length - 1; count >= Math.max(1, length - PROBED_MESSAGE_BOUNDARIES); count--) {
      const hash = chat.hashes[count - 1]!;
      if ((seen.get(hash) ?? 0) < 2) continue;
      const prefix = chosen.get(hash) ?? { key: hash.slice(0, 24), model: chat.model, messages: chat.messages.slice(0, count), requests: 0 };
      prefix.requests++;
      chosen.set(hash, prefix);
      break;
    }
  }
  return [...chosen.values()]
    .filter((prefix) => prefix.requests >= 2 && prefix.messages.reduce((sum, message) => sum + message.content.length, 0) >= MIN_SHARED_PREFIX_CHARS)
    .sort((left, right) => right.requests - left.requests)
    .slice(0, MAX_SEEDS_PER_BATCH);
}
