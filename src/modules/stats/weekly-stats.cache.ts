import {Inject, Injectable, Logger} from "@tsed/common";
import {RedisClient} from "../../platform/cache/redis.provider.js";

export const WEEKLY_TTL_SECONDS = 10 * 60;
/** Outlives every cached value (refreshed on each write), so a generation never restarts under a live value. */
const GENERATION_TTL_SECONDS = 24 * 60 * 60;
/** Devices per invalidation script (WeeklyStatsCache.bump). */
export const BUMP_PER_COMMAND = 1_000;
/** Invalidations that failed while Redis was down, retried before the cache is trusted again. */
const MAX_PENDING = 10_000;

export const weeklyKey = (tenantId: string, deviceId: string) => `stats:weekly:${tenantId}:${deviceId}`;
const generationKey = (tenantId: string, deviceId: string) => `stats:weekly-gen:${tenantId}:${deviceId}`;

/**
 * Invalidates weekly summaries: KEYS are pairs (generation key, value key), ARGV[1] the
 * generation's TTL. A script rather than MULTI with INCR, EXPIRE and DEL per device: a refresh
 * spread over many tenants names a few devices each time, and three commands per device (each
 * its own command object and reply in the client) cost the API more than the refresh's merge
 * statement (bench:profile spread-single). A script is atomic like MULTI.
 */
const BUMP_GENERATIONS_LUA = `
for i = 1, #KEYS, 2 do
  redis.call("INCR", KEYS[i])
  redis.call("EXPIRE", KEYS[i], ARGV[1])
  redis.call("DEL", KEYS[i + 1])
end
return #KEYS / 2`;

/** The client once the script is defined on it. */
interface BumpCommand {
  bumpWeeklyGenerations(numberOfKeys: number, ...keysThenTtl: (string | number)[]): Promise<number>;
}

interface Entry<T> {
  gen: string;
  body: T;
}

/**
 * The weekly summaries in Redis (JSON per tenant and device, with a TTL).
 *
 * A reader must never see a summary older than the last committed write, including when a write
 * commits between a reader's database read and its cache fill. Each key therefore has a
 * generation counter: invalidating bumps it and deletes the value, and a value stored under an
 * older generation than the current one is ignored. Reading value and generation is one MGET.
 *
 * Redis down: every method degrades to "no cache" (logged once per outage), never throws. An
 * invalidation that could not be delivered is kept and replayed before the cache is trusted again.
 */
@Injectable()
export class WeeklyStatsCache {
  @Inject(RedisClient)
  private redis!: RedisClient;

  @Inject()
  private logger!: Logger;

  private pending = new Set<string>();
  private pendingOverflow = false;
  private degraded = false;

  /** The cached body and the generation it must be stored under on a miss. */
  async get<T>(tenantId: string, deviceId: string): Promise<{body?: T; gen: string} | undefined> {
    try {
      await this.replayPending();
      const [raw, gen] = await this.redis.mget(weeklyKey(tenantId, deviceId), generationKey(tenantId, deviceId));
      this.recovered();
      const current = gen ?? "0";
      const entry = raw ? (JSON.parse(raw) as Entry<T>) : undefined;
      return {body: entry?.gen === current ? entry.body : undefined, gen: current};
    } catch (error) {
      this.failed("get", error);
      return undefined;
    }
  }

  async set<T>(tenantId: string, deviceId: string, gen: string, body: T): Promise<void> {
    try {
      await this.redis.set(weeklyKey(tenantId, deviceId), JSON.stringify({gen, body} satisfies Entry<T>), "EX", WEEKLY_TTL_SECONDS);
    } catch (error) {
      this.failed("set", error);
    }
  }

  /** After the devices' DailyStats changed (and committed). Never throws. */
  invalidate(tenantId: string, deviceIds: Iterable<string>): Promise<void> {
    return this.invalidateMany(new Map([[tenantId, deviceIds]]));
  }

  /** The same for devices of several tenants (device ids by tenant), in one Redis round trip. Never throws. */
  async invalidateMany(changed: ReadonlyMap<string, Iterable<string>>): Promise<void> {
    const keys: string[] = [];
    for (const [tenantId, deviceIds] of changed) for (const deviceId of deviceIds) keys.push(`${tenantId}:${deviceId}`);
    if (keys.length === 0) return;
    try {
      await this.bump(keys);
      this.recovered();
    } catch (error) {
      this.failed("invalidate", error);
      for (const key of keys) this.pending.add(key);
      if (this.pending.size > MAX_PENDING) {
        this.pending.clear();
        this.pendingOverflow = true;
      }
    }
  }

  /** Every weekly summary of a tenant (its timezone changed: all days moved). */
  async invalidateTenant(tenantId: string): Promise<void> {
    try {
      await this.deleteMatching(`stats:weekly:${tenantId}:*`);
    } catch (error) {
      this.failed("invalidateTenant", error);
      this.pendingOverflow = true;
    }
  }

  /**
   * One command for every device of a refresh (BUMP_GENERATIONS_LUA), up to BUMP_PER_COMMAND of
   * them: a recompute of a day of a large tenant names every device, and one script over all of
   * them would hold Redis for every other client meanwhile.
   */
  private async bump(keys: string[]) {
    for (let from = 0; from < keys.length; from += BUMP_PER_COMMAND) {
      const redisKeys: string[] = [];
      for (const key of keys.slice(from, from + BUMP_PER_COMMAND)) {
        const [tenantId, deviceId] = key.split(":") as [string, string];
        redisKeys.push(generationKey(tenantId, deviceId), weeklyKey(tenantId, deviceId));
      }
      await this.bumpCommand().bumpWeeklyGenerations(redisKeys.length, ...redisKeys, GENERATION_TTL_SECONDS);
    }
  }

  /** The client with the script defined (ioredis sends it by EVALSHA, loading it once per server). */
  private bumpCommand(): BumpCommand {
    const redis = this.redis as unknown as Partial<BumpCommand>;
    if (!redis.bumpWeeklyGenerations) this.redis.defineCommand("bumpWeeklyGenerations", {lua: BUMP_GENERATIONS_LUA});
    return redis as BumpCommand;
  }

  /** Delivers the invalidations that failed, so that cached values can be trusted again; throws while Redis is down. */
  private async replayPending(): Promise<void> {
    if (!this.pendingOverflow && this.pending.size === 0) return;
    if (this.pendingOverflow) {
      // Too many lost invalidations to replay one by one: drop every weekly summary.
      await this.deleteMatching("stats:weekly:*");
      this.pendingOverflow = false;
      this.pending.clear();
    } else {
      const keys = [...this.pending];
      await this.bump(keys);
      for (const key of keys) this.pending.delete(key);
    }
    this.logger.info({event: "STATS_CACHE_INVALIDATIONS_REPLAYED"});
  }

  private async deleteMatching(pattern: string) {
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      if (keys.length) await this.redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  }

  private failed(operation: string, error: unknown) {
    if (this.degraded) return;
    this.degraded = true;
    this.logger.warn({event: "STATS_CACHE_BYPASSED", operation, error_message: (error as Error)?.message});
  }

  private recovered() {
    if (!this.degraded) return;
    this.degraded = false;
    this.logger.info({event: "STATS_CACHE_RESTORED"});
  }
}
