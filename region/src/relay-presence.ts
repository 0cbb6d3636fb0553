/**
 * Whether a gateway's stream readers are still alive, for the gpu-nodes: a job whose only reader
 * is gone (its gateway was killed, or lost Redis) is generating for nobody, and stops. Each relay
 * group's presence key lives `ttlMs` and its gateway renews it three times per TTL; a gateway
 * that stops cleanly deletes it. A killed one's keys expire, so its jobs stop within about
 * `ttlMs` plus the gpu-node's check interval.
 */
import type { RegionKeys } from './keys.js';
import type { RegionRedis } from './connection.js';

export const DEFAULT_RELAY_PRESENCE_TTL_MS = 15_000;
/** Shorter, and a gateway's event loop stalled for a moment (a GC, a large body) would stop its jobs. */
export const MIN_RELAY_PRESENCE_TTL_MS = 1_000;

export class RelayPresence {
  private readonly timer: NodeJS.Timeout;
  /** The renewal on its way, so a close deletes after it (a SET landing after the DEL would bring the keys back). */
  private renewing: Promise<void> = Promise.resolve();
  /** The first write: a gateway queues no job before it has landed. */
  readonly ready: Promise<void>;

  constructor(
    private readonly redis: RegionRedis,
    private readonly keys: RegionKeys,
    private readonly groups: readonly string[],
    private readonly ttlMs = DEFAULT_RELAY_PRESENCE_TTL_MS,
  ) {
    this.ready = this.renew();
    this.ready.catch(() => { /* renewed on the next tick; jobs queued meanwhile see it then */ });
    this.timer = setInterval(() => { this.renew().catch(() => { /* Redis is away: the keys may lapse, and the jobs stop, as they should */ }); }, Math.max(100, Math.floor(ttlMs / 3)));
    this.timer.unref();
    // Back from a lost connection (a Redis restarted without its data, say): at once, not a third of a TTL later.
    redis.on('ready', this.renewNow);
  }

  private readonly renewNow = () => { this.renew().catch(() => { /* renewed on the next tick */ }); };

  /** One command per group, side by side: the groups' keys hash to different Cluster slots. */
  private renew(): Promise<void> {
    const renewing = Promise.all(this.groups.map((group) => this.redis.set(this.keys.relayPresence(group), '1', 'PX', this.ttlMs))).then(() => {});
    this.renewing = renewing.catch(() => {});
    return renewing;
  }

  /**
   * Renew one group's key now, ahead of a job for it. Sent before the job is queued, so even a
   * Redis that came back without its data (the key gone until the next renewal) has it when the
   * job starts.
   */
  touch(group: string): void {
    this.redis.set(this.keys.relayPresence(group), '1', 'PX', this.ttlMs).catch(() => { /* renewed on the next tick */ });
  }

  /** Stop renewing and delete the keys: the jobs still running for these readers stop. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.redis.off('ready', this.renewNow);
    await this.renewing;
    await Promise.all(this.groups.map((group) => this.redis.del(this.keys.relayPresence(group))));
  }
}

/** The relay groups among `groups` whose reader is gone. A failed read throws: unknown is not gone. */
export async function absentRelayGroups(redis: RegionRedis, keys: RegionKeys, groups: Iterable<string>): Promise<Set<string>> {
  const unique = [...new Set(groups)];
  const found = await Promise.all(unique.map((group) => redis.exists(keys.relayPresence(group))));
  return new Set(unique.filter((_, index) => found[index] === 0));
}
