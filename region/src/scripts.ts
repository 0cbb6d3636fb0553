/**
 * Runs our Lua scripts: each is defined once per connection with ioredis' `defineCommand`,
 * which calls EVALSHA and falls back to EVAL (loading the script) when Redis does not know
 * the SHA yet, as after a restart. Script bodies live next to the store that owns their keys.
 */
import { InternalInvariantError } from '@bamba/shared';
import type { RegionRedis } from './connection.js';

/** A Lua script with the number of KEYS it takes; its header comment names KEYS and ARGV. */
export interface LuaScript {
  /** Command name it is defined under (letters only). */
  readonly name: string;
  readonly keys: number;
  readonly lua: string;
}

const definedOn = new WeakMap<RegionRedis, Set<string>>();

export async function runScript(redis: RegionRedis, script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  if (keys.length !== script.keys) throw new InternalInvariantError(`script ${script.name} takes ${script.keys} keys, got ${keys.length}`);
  let defined = definedOn.get(redis);
  if (!defined) {
    defined = new Set();
    definedOn.set(redis, defined);
  }
  if (!defined.has(script.name)) {
    redis.defineCommand(script.name, { numberOfKeys: script.keys, lua: script.lua });
    defined.add(script.name);
  }
  const command = (redis as unknown as Record<string, (...parts: Array<string | number>) => Promise<unknown>>)[script.name]!;
  return command.call(redis, ...keys, ...args);
}

/** The code of a refusal a script returned with `redis.error_reply(CODE)`, if it is one of `codes`. */
export function scriptRefusal<C extends string>(error: unknown, codes: readonly C[]): C | null {
  const message = error instanceof Error ? error.message : '';
  return codes.find((code) => message === code || message.startsWith(`${code} `) || message.endsWith(` ${code}`)) ?? null;
}
