import {setTimeout as sleepFor} from "node:timers/promises";
import {DeadlockException} from "@mikro-orm/core";
import {Inject, Injectable, Logger} from "@tsed/common";
import type {RetryStrategy} from "@tsed/mikro-orm";
import {ServiceUnavailableError} from "../../common/errors.js";
import {RETRYABLE_UNIQUE_CONSTRAINT} from "./retryable-constraint.js";
import {isStalePreparedPlan, isUniqueViolation} from "./sql.js";

export interface RetryPolicy {
  /** Ceiling of the first retry's delay; it doubles with each further attempt. */
  baseDelayMs: number;
  /** No delay is longer than this. */
  maxDelayMs: number;
  /** Attempts in all, the first one included. */
  maxAttempts: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {baseDelayMs: 20, maxDelayMs: 1_000, maxAttempts: 5};

export type RetryReason = "serialization_failure" | "deadlock" | "stale_prepared_plan" | `unique_violation:${string}`;

export interface RetryEvent {
  event: "TRANSACTION_RETRY";
  /** The attempt that failed (1 = the first try). */
  attempt: number;
  /** How long we wait before the next attempt. */
  delayMs: number;
  /** The upper bound of this attempt's delay: baseDelayMs · 2^(attempt−1), capped. */
  ceilingMs: number;
  reason: RetryReason;
}

export type RetryListener = (event: RetryEvent) => void;

/**
 * Why an error is worth re-running the transaction for, or undefined when it is not.
 * @param retryableConstraints unique indexes whose violation is a race, not a conflict (retryableUniqueConstraint)
 */
export function retryReason(error: unknown, retryableConstraints: ReadonlySet<string>): RetryReason | undefined {
  const {code, constraint} = (error ?? {}) as {code?: unknown; constraint?: unknown};
  // MikroORM maps both 40001 and 40P01 to DeadlockException and keeps the SQLSTATE in `code`.
  if (code === "40001") return "serialization_failure";
  if (code === "40P01") return "deadlock";
  if (error instanceof DeadlockException) return "deadlock";
  // A migration retyped a column a prepared statement returns: queryRows named it anew, and the
  // next attempt prepares it afresh.
  if (isStalePreparedPlan(error)) return "stale_prepared_plan";
  if (isUniqueViolation(error) && typeof constraint === "string" && retryableConstraints.has(constraint)) {
    return `unique_violation:${constraint}`;
  }
  return undefined;
}

/**
 * The delay after failed attempt `attempt`: exponential ceiling with "equal jitter" — half of the
 * ceiling fixed, the other half random. Racing transactions spread out (they do not retry in
 * lock-step), and every retry waits at least as long as the previous one could have, so the
 * delays of one transaction grow.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): {ceilingMs: number; delayMs: number} {
  const ceilingMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const delayMs = Math.round(ceilingMs / 2 + random() * (ceilingMs / 2));
  return {ceilingMs, delayMs};
}

/**
 * The RetryStrategy of `@Transactional({retry: true})`: re-runs the whole transaction on
 * serialization failures, deadlocks, the unique violations the features declared retryable
 * (retryableUniqueConstraint) and a prepared plan a migration made stale, with exponential,
 * jittered backoff and a bounded number of attempts. Anything else fails at once. When the
 * attempts run out the caller gets a 503 with Retry-After (the write may well succeed a moment
 * later), never a 500.
 *
 * Registered in tsed.config.ts with `imports: [{token: RetryStrategy, useClass: ...}]`.
 */
@Injectable()
export class ExponentialBackoffRetryStrategy implements RetryStrategy {
  policy: RetryPolicy = {...DEFAULT_RETRY_POLICY};
  /** Replaceable in unit tests, like `sleep`. */
  random: () => number = Math.random;
  sleep: (ms: number) => Promise<unknown> = (ms) => sleepFor(ms);

  private readonly listeners = new Set<RetryListener>();
  private readonly retryableConstraints: ReadonlySet<string>;

  constructor(
    @Inject(Logger) private readonly logger: {info(entry: RetryEvent): unknown},
    @Inject(RETRYABLE_UNIQUE_CONSTRAINT) retryableConstraints: string[]
  ) {
    this.retryableConstraints = new Set(retryableConstraints);
  }

  /** Why re-running a transaction that failed with `error` may succeed, or undefined when it cannot. */
  retryReason(error: unknown): RetryReason | undefined {
    return retryReason(error, this.retryableConstraints);
  }

  /** Observe retries (tests, metrics). Returns the function that stops observing. */
  onRetry(listener: RetryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async acquire<T extends (...args: unknown[]) => unknown>(task: T): Promise<ReturnType<T> extends Promise<infer V> ? V : ReturnType<T>> {
    type Result = ReturnType<T> extends Promise<infer V> ? V : ReturnType<T>;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await task()) as Result;
      } catch (error) {
        const reason = this.retryReason(error);
        if (!reason) throw error;
        if (attempt >= this.policy.maxAttempts) throw exhausted(error, attempt, reason);
        const {ceilingMs, delayMs} = backoffDelay(attempt, this.policy, this.random);
        const event: RetryEvent = {event: "TRANSACTION_RETRY", attempt, delayMs, ceilingMs, reason};
        this.logger.info(event);
        for (const listener of this.listeners) listener(event);
        await this.sleep(delayMs);
      }
    }
  }
}

function exhausted(error: unknown, attempts: number, reason: RetryReason): ServiceUnavailableError {
  // A stale plan is no conflict: it outlasting every attempt means the schema kept changing under the write (a migration running).
  const what =
    reason === "stale_prepared_plan"
      ? "The database kept refusing the write's prepared statements"
      : "The write kept conflicting with concurrent writes";
  const unavailable = new ServiceUnavailableError(`${what} (${reason}, ${attempts} attempts); retry later`, 1);
  unavailable.cause = error;
  return unavailable;
}
