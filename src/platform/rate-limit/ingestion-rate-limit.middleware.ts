import {Inject} from "@tsed/di";
import {Logger} from "@tsed/logger";
import {Middleware, type MiddlewareMethods} from "@tsed/platform-middlewares";
import {Context} from "@tsed/platform-params";
import {RateLimiterMemory, RateLimiterRedis, RateLimiterRes} from "rate-limiter-flexible";
import {TooManyRequestsError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {RedisClient} from "../cache/redis.provider.js";
import {TenantContext} from "../tenancy/tenant-context.js";

/**
 * Per-device and per-tenant request budgets for ingestion, counted in Redis so they hold across
 * instances (rate-limiter-flexible). While Redis is down each instance falls back to an in-memory
 * budget of its own rather than refusing or ignoring the limit. Runs after the tenant middleware.
 */
@Middleware()
export class IngestionRateLimitMiddleware implements MiddlewareMethods {
  @Inject()
  private tenant!: TenantContext;

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

  async use(@Context() $ctx: Context) {
    const tenantId = this.tenant.tenantId;
    // One spelling of an id: `ABC…` must not get a budget of its own next to `abc…`.
    const deviceId = String($ctx.request.params.deviceId ?? "").toLowerCase();
    for (const {scope, limiter} of this.limiters) {
      try {
        await limiter.consume(scope === "device" ? `${tenantId}:${deviceId}` : tenantId);
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          throw new TooManyRequestsError(`Too many ingestion requests for this ${scope}; retry later`, Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)));
        }
        // Neither Redis nor the insurance limiter answered: let the reading in rather than lose it.
        this.logger.warn({event: "RATE_LIMIT_UNAVAILABLE", scope, error_message: (rejection as Error)?.message});
      }
    }
  }
}
