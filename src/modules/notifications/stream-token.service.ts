import {randomBytes} from "node:crypto";
import {Inject, Injectable} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {RedisClient} from "../../platform/cache/redis.provider.js";

/** How long a stream token may wait for its one use. */
export const STREAM_TOKEN_TTL_S = 60;

const TOKEN_PATTERN = /^stk_[A-Za-z0-9_-]{43}$/;

/**
 * Single-use tokens for `GET /api/v1/stream?streamToken=` (a browser's EventSource cannot send an
 * Authorization header, and a bearer token in a URL would end up in logs and histories). A token
 * stands for the caller's bearer token, kept in Redis (shared by the instances) for at most
 * STREAM_TOKEN_TTL_S and deleted by its first use (GETDEL): the stream request is then
 * authenticated exactly like any other, with that bearer token (expiry, tenant, role, deleted
 * user), so it can never outlive it.
 */
@Injectable()
export class StreamTokenService {
  @Inject(RedisClient)
  private redis!: RedisClient;

  @Inject()
  private config!: AppConfig;

  async issue(bearerToken: string): Promise<{streamToken: string; expiresAt: Date}> {
    const streamToken = `stk_${randomBytes(32).toString("base64url")}`;
    await this.redis.set(this.key(streamToken), bearerToken, "EX", STREAM_TOKEN_TTL_S);
    return {streamToken, expiresAt: new Date(Date.now() + STREAM_TOKEN_TTL_S * 1000)};
  }

  /** The bearer token the stream token stood for, once; undefined for an unknown, used or expired one. */
  async redeem(streamToken: string): Promise<string | undefined> {
    if (!TOKEN_PATTERN.test(streamToken)) return undefined;
    return (await this.redis.getdel(this.key(streamToken))) ?? undefined;
  }

  private key(streamToken: string): string {
    return `${this.config.queuePrefix}:stream-token:${streamToken}`;
  }
}
