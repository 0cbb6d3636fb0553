/**
 * Stored responses (the Responses API) in a region's Redis: one HASH per response, expiring
 * after the stored-response TTL. A response's state is not kept here: its answer's snapshot is
 * a prefix-cache entry like any stateless turn's (evictable within the snapshot budget), found
 * again because a child's prompt extends it. Status changes are one Lua script that acts only
 * while the response is still active, so a finished, cancelled or failed response never changes
 * again, whoever (the gateway that ran it, a reader settling it from its token stream) is late.
 */
import {
  ACTIVE_RESPONSE_STATUSES,
  chatMessageSchema,
  parseWire,
  responseTextFormatSchema,
  toolCallSchema,
  toolChoiceSchema,
  toolSchema,
  tokenLogprobSchema,
  WIRE_VERSION,
  WireFormatError,
  type NewResponse,
  type ResponseOutcome,
  type ResponseRecord,
} from '@bamba/shared';
import { z } from 'zod';
import type { RegionRedis } from './connection.js';
import { countField, jsonField } from './hash-fields.js';
import { isResponseId } from './ids.js';
import type { RegionKeys } from './keys.js';
import { runScript, type LuaScript } from './scripts.js';

const json = <T extends z.ZodTypeAny>(schema: T) => jsonField(schema, 'not the expected JSON');

const outcomeSchema = z.object({
  status: z.enum(['completed', 'incomplete', 'failed', 'cancelled']),
  outputText: z.string(),
  deltaLengths: z.array(z.number().int().positive()).optional(),
  logprobs: z.array(tokenLogprobSchema).optional(),
  deltaLogprobCounts: z.array(z.number().int().nonnegative()).optional(),
  usage: z.object({ inputTokens: z.number().int(), cachedTokens: z.number().int(), outputTokens: z.number().int() }).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  incompleteReason: z.string().nullable(),
  completedAtMs: z.number().int(),
  toolCalls: z.array(toolCallSchema).min(1).optional(),
});

const responseHashSchema = z.object({
  v: z.literal(String(WIRE_VERSION)),
  tenant: z.string().min(1),
  status: z.enum(['queued', 'in_progress', 'completed', 'incomplete', 'failed', 'cancelled']),
  model: z.string().min(1),
  createdAtMs: countField,
  background: z.enum(['0', '1']).transform((flag) => flag === '1'),
  instructions: json(z.string().nullable()),
  previousResponseId: z.string().transform((id) => id || null),
  conversationId: z.string().transform((id) => id || null),
  metadata: json(z.record(z.string(), z.string())),
  // `textFormat` is absent on records of builds before structured outputs (plain text), the tools on those before tool calls (none).
  sampling: json(z.object({
    temperature: z.number(),
    topP: z.number(),
    maxOutputTokens: z.number().int().nullable(),
    // Absent on records of builds before Responses log probabilities (none asked).
    topLogprobs: z.number().int().nullable().default(null),
    textFormat: responseTextFormatSchema.default({ type: 'text' }),
    tools: z.array(toolSchema).default([]),
    toolChoice: toolChoiceSchema.default('none'),
    parallelToolCalls: z.boolean().default(true),
  })),
  input: json(z.array(chatMessageSchema)),
  history: json(z.array(chatMessageSchema)),
  relayGroup: z.string(),
  deadlineAtMs: countField,
  /** JSON of `ResponseOutcome` once the response is no longer active, else ''. */
  outcome: z.union([z.literal('').transform(() => null), jsonField(outcomeSchema, 'outcome is not the expected JSON')]),
});

/** Field names of the response hash, for the Lua scripts. */
const F = responseHashSchema.keyof().enum;

const ACTIVE_LUA_SET = `{${ACTIVE_RESPONSE_STATUSES.map((status) => `['${status}']=true`).join(', ')}}`;

/**
 * Change an active response. KEYS[1] response hash. ARGV[1] new status, ARGV[2] outcome JSON
 * ('' keeps none), ARGV[3] relay group ('' keeps it).
 * Returns 1 when changed, 0 when the response is gone or no longer active.
 */
const ADVANCE: LuaScript = {
  name: 'bambaAdvanceResponse',
  keys: 1,
  lua: `
local active = ${ACTIVE_LUA_SET}
local status = redis.call('HGET', KEYS[1], '${F.status}')
if not status or not active[status] then return 0 end
redis.call('HSET', KEYS[1], '${F.status}', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], '${F.outcome}', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], '${F.relayGroup}', ARGV[3]) end
return 1
`,
};

/** KEYS[1] response hash. ARGV[1] tenant. Deletes it if it is that tenant's: 1, else 0. */
const DELETE_RESPONSE: LuaScript = {
  name: 'bambaDeleteResponse',
  keys: 1,
  lua: `
if redis.call('HGET', KEYS[1], '${F.tenant}') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`,
};

export class ResponseStore {
  constructor(private readonly redis: RegionRedis, private readonly keys: RegionKeys) {}

  /** Store a new (queued or in-progress) response for `ttlSeconds`. */
  async create(record: NewResponse, ttlSeconds: number): Promise<void> {
    const hash: Record<keyof typeof F, string> = {
      v: String(WIRE_VERSION),
      tenant: record.tenant,
      status: record.status,
      model: record.model,
      createdAtMs: String(record.createdAtMs),
      background: record.background ? '1' : '0',
      instructions: JSON.stringify(record.instructions),
      previousResponseId: record.previousResponseId ?? '',
      conversationId: record.conversationId ?? '',
      metadata: JSON.stringify(record.metadata),
      sampling: JSON.stringify({ temperature: record.temperature, topP: record.topP, maxOutputTokens: record.maxOutputTokens, topLogprobs: record.topLogprobs, textFormat: record.textFormat, tools: record.tools, toolChoice: record.toolChoice, parallelToolCalls: record.parallelToolCalls }),
      input: JSON.stringify(record.input),
      history: JSON.stringify(record.history),
      relayGroup: record.relayGroup,
      deadlineAtMs: String(record.deadlineAtMs),
      outcome: '',
    };
    const key = this.keys.response(record.id);
    const results = await this.redis.multi().hset(key, hash).expire(key, ttlSeconds).exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  /** The response, or null when it is missing, expired, not an id of ours, or another tenant's. */
  async get(tenant: string, responseId: string): Promise<ResponseRecord | null> {
    if (!isResponseId(responseId)) return null;
    const hash = await this.redis.hgetall(this.keys.response(responseId));
    if (Object.keys(hash).length === 0 || hash.tenant !== tenant) return null;
    if (hash.v !== String(WIRE_VERSION)) throw new WireFormatError('response record', `wire version ${hash.v ?? 'missing'}, this build reads version ${WIRE_VERSION}`, 'wire_version_unsupported');
    const { v: _version, sampling, ...fields } = parseWire(responseHashSchema, hash, 'response record');
    return { id: responseId, ...fields, ...sampling };
  }

  /** Its job is queued: `relayGroup` says where its token events go. False when no longer active. */
  async queued(responseId: string, relayGroup: string): Promise<boolean> {
    return (await runScript(this.redis, ADVANCE, [this.keys.response(responseId)], ['queued', '', relayGroup])) === 1;
  }

  /** A gpu-node started it: queued → in progress. False when no longer active. */
  async running(responseId: string): Promise<boolean> {
    return (await runScript(this.redis, ADVANCE, [this.keys.response(responseId)], ['in_progress', '', ''])) === 1;
  }

  /** Record how it ended, unless it ended already (first writer wins). */
  async finish(responseId: string, outcome: ResponseOutcome): Promise<boolean> {
    return (await runScript(this.redis, ADVANCE, [this.keys.response(responseId)], [outcome.status, JSON.stringify(outcome), ''])) === 1;
  }

  async delete(tenant: string, responseId: string): Promise<boolean> {
    if (!isResponseId(responseId)) return false;
    return (await runScript(this.redis, DELETE_RESPONSE, [this.keys.response(responseId)], [tenant])) === 1;
  }
}
