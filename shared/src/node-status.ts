/** What a gpu-node announces about itself every heartbeat (JSON in Redis, short expiry). */
import { z } from 'zod';
import { NotFoundError } from './errors.js';
import { parseWireJson, wireVersionField } from './wire.js';

/** A model fingerprint (hex sha-256 of what decides a state's meaning; gpu-node's fingerprint.ts). */
export const modelFingerprintSchema = z.string().regex(/^[0-9a-f]{64}$/);

export const servedModelSchema = z.object({
  /** Model id clients use (`model` in requests). */
  id: z.string().min(1),
  /** Tokens one slot holds: prompt + completion must fit. */
  contextSize: z.number().int().positive(),
  fingerprint: modelFingerprintSchema,
});
export type ServedModel = z.infer<typeof servedModelSchema>;

export const nodeStatusSchema = z.object({
  ...wireVersionField,
  nodeId: z.string().min(1),
  region: z.string().min(1),
  device: z.enum(['cpu', 'cuda']),
  models: z.array(servedModelSchema),
  slots: z.number().int().positive(),
  /** Requests running now (a slot reserved while waiting for a job does not count). */
  busySlots: z.number().int().min(0),
  /** Highest `busySlots` seen since the node started. */
  maxBusySlots: z.number().int().min(0),
  /** Sessions whose state the node keeps in a slot for their next turn. */
  residentSessions: z.number().int().min(0).default(0),
  /** Sessions whose state the node keeps in host memory (its second tier), and their bytes; null: no such tier. */
  hostTierSessions: z.number().int().min(0).nullable().default(null),
  hostTierBytes: z.number().int().min(0).nullable().default(null),
  /** Prefix-cache lookups of this node since start, by the boundary they found (or missed). */
  prefixLookups: z.object({
    systemHits: z.number().int().min(0),
    turnHits: z.number().int().min(0),
    misses: z.number().int().min(0),
  }).default({ systemHits: 0, turnHits: 0, misses: 0 }),
  /** The region's snapshot byte budget as this node enforces it (its eviction target). */
  snapshotBudgetBytes: z.number().int().min(0).nullable().default(null),
  /** Requests finished since start. */
  completedRequests: z.number().int().min(0),
  /** False once the node is stopping: it takes no new work. */
  accepting: z.boolean(),
  startedAtMs: z.number().int(),
  heartbeatAtMs: z.number().int(),
});

export type NodeStatus = z.infer<typeof nodeStatusSchema>;

/** Parse a status read from Redis. Throws `WireFormatError`. */
export function parseNodeStatus(text: string): NodeStatus {
  return parseWireJson(nodeStatusSchema, text, 'node status');
}

/**
 * The model `modelId` as live gpu-nodes serve it (its context bounds max_tokens), or a 404 naming
 * the models they do serve. For the gateway's admission and the workers' batch requests alike.
 */
export function servedModel(nodes: readonly NodeStatus[], modelId: string): ServedModel {
  return modelById(nodes.flatMap((node) => node.models), modelId);
}

/** The model `modelId` among `models`, or OpenAI's 404 naming those there are. */
export function modelById<T extends { id: string }>(models: readonly T[], modelId: string): T {
  const model = models.find((entry) => entry.id === modelId);
  if (model) return model;
  throw modelNotFound(modelId, models.map((entry) => entry.id));
}

/** OpenAI's 404 for a model nobody serves, naming those that are (the id cut short: it is the client's). */
function modelNotFound(modelId: string, available: readonly string[]): NotFoundError {
  const id = modelId.length > 128 ? `${modelId.slice(0, 128)}…` : modelId;
  return new NotFoundError(`model '${id}' does not exist; available: ${[...new Set(available)].join(', ') || 'none'}`, { param: 'model', code: 'model_not_found' });
}
