import {inject, injectable, logger} from "@tsed/common";
import {Redis, type RedisOptions} from "ioredis";
import {AppConfig} from "../../config/app-config.js";

/**
 * The app's Redis client (cache, rate limits). Commands fail fast while Redis is down (no offline
 * queue, one retry) so callers can fall back to Postgres; the client reconnects on its own.
 * `@tsed/ioredis` only exists for Ts.ED 7, hence this small provider.
 */
export const RedisClient = Symbol.for("smart-thermo:RedisClient");
export type RedisClient = Redis;

export function redisOptions(url: string, overrides: RedisOptions = {}): RedisOptions {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    username: parsed.username || undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    tls: parsed.protocol === "rediss:" ? {} : undefined,
    ...overrides
  };
}

injectable(RedisClient)
  .factory(() => {
    const client = new Redis(
      redisOptions(inject(AppConfig).redisUrl, {
        connectionName: "smart-thermo-app",
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2_000,
        commandTimeout: 1_000,
        retryStrategy: (attempt) => Math.min(attempt * 200, 2_000)
      })
    );
    let down = false;
    client.on("error", (error) => {
      if (!down) logger().warn({event: "REDIS_UNAVAILABLE", error_message: error.message});
      down = true;
    });
    client.on("ready", () => {
      if (down) logger().info({event: "REDIS_RECONNECTED"});
      down = false;
    });
    return client;
  })
  .hooks({
    $onDestroy: async (client: Redis) => {
      await client.quit().catch(() => client.disconnect());
    }
  });
