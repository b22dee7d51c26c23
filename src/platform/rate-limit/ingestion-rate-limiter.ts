import {Inject, Injectable, Logger} from "@tsed/common";
import {RateLimiterMemory, RateLimiterRedis, RateLimiterRes} from "rate-limiter-flexible";
import {TooManyRequestsError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {RedisClient} from "../cache/redis.provider.js";

/**
 * Per-device and per-tenant ingestion budgets, counted in Redis so they hold across instances and
 * transports (rate-limiter-flexible): an HTTP request (single or batch) and an MQTT message each
 * take one point of the same budgets. While Redis is down each instance falls back to an in-memory
 * budget of its own rather than refusing or ignoring the limit.
 */
@Injectable()
export class IngestionRateLimiter {
  @Inject()
  private logger!: Logger;

  private readonly limiters: {scope: "device" | "tenant"; limiter: RateLimiterRedis}[];

  constructor(@Inject(RedisClient) redis: RedisClient, @Inject(AppConfig) config: AppConfig) {
    const {devicePerMinute, tenantPerMinute} = config.rateLimit;
    const make = (scope: "device" | "tenant", points: number) => ({
      scope,
      limiter: new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `rl:ingest:${scope}`,
        points,
        duration: 60,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({points, duration: 60})
      })
    });
    this.limiters = [
      ...(devicePerMinute > 0 ? [make("device", devicePerMinute)] : []),
      ...(tenantPerMinute > 0 ? [make("tenant", tenantPerMinute)] : [])
    ];
  }

  /** No budget configured (RATE_LIMIT_*_PER_MINUTE=0 for both): callers may skip the call. */
  get unlimited(): boolean {
    return this.limiters.length === 0;
  }

  /**
   * Takes one point from the device's and the tenant's budgets.
   * @param deviceId in one spelling (lower case): `ABC…` must not get a budget of its own next to `abc…`
   * @throws TooManyRequestsError when either budget is spent, with the seconds until it refills
   */
  async consume(tenantId: string, deviceId: string): Promise<void> {
    for (const {scope, limiter} of this.limiters) {
      try {
        await limiter.consume(scope === "device" ? `${tenantId}:${deviceId}` : tenantId);
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          throw new TooManyRequestsError(
            `Too many ingestion requests for this ${scope}; retry later`,
            Math.max(1, Math.ceil(rejection.msBeforeNext / 1000))
          );
        }
        // Neither Redis nor the insurance limiter answered: let the reading in rather than lose it.
        this.logger.warn({event: "RATE_LIMIT_UNAVAILABLE", scope, error_message: (rejection as Error)?.message});
      }
    }
  }
}
