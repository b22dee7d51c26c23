import {Inject, Logger, Middleware, type MiddlewareMethods} from "@tsed/common";
import {RateLimiterMemory, RateLimiterRedis, RateLimiterRes} from "rate-limiter-flexible";
import {TooManyRequestsError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {RedisClient} from "../cache/redis.provider.js";
import {TenantContext} from "../tenancy/tenant-context.js";

/**
 * A tenant's budget of reads per minute (RATE_LIMIT_TENANT_READS_PER_MINUTE), counted in Redis so
 * that it holds across instances, like the ingestion budgets: one tenant's dashboards cannot take
 * the capacity every other tenant shares. While Redis is down each instance counts on its own.
 * The Authenticated decorator puts it on every GET operation, after the tenant is bound.
 */
@Middleware()
export class TenantReadRateLimitMiddleware implements MiddlewareMethods {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private logger!: Logger;

  private readonly limiter: RateLimiterRedis | undefined;

  constructor(@Inject(RedisClient) redis: RedisClient, @Inject(AppConfig) config: AppConfig) {
    const points = config.rateLimit.tenantReadsPerMinute;
    this.limiter =
      points > 0
        ? new RateLimiterRedis({
            storeClient: redis,
            keyPrefix: "rl:read:tenant",
            points,
            duration: 60,
            rejectIfRedisNotReady: true,
            insuranceLimiter: new RateLimiterMemory({points, duration: 60})
          })
        : undefined;
  }

  async use() {
    if (!this.limiter) return;
    try {
      await this.limiter.consume(this.tenant.tenantId);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes)
        throw new TooManyRequestsError(
          "Too many reads for this tenant; retry later",
          Math.max(1, Math.ceil(rejection.msBeforeNext / 1000))
        );
      // Neither Redis nor the in-memory budget answered: serve the read rather than refuse it.
      this.logger.warn({event: "RATE_LIMIT_UNAVAILABLE", scope: "tenant-reads", error_message: (rejection as Error)?.message});
    }
  }
}
