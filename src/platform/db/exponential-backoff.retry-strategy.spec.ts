import {
  DeadlockException,
  DriverException,
  ForeignKeyConstraintViolationException,
  UniqueConstraintViolationException
} from "@mikro-orm/core";
import {describe, expect, it} from "vitest";
import {ServiceUnavailableError} from "../../common/errors.js";
import {
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  ExponentialBackoffRetryStrategy,
  type RetryEvent,
  retryReason
} from "./exponential-backoff.retry-strategy.js";

const pgError = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`pg error ${code}`), {code, ...extra});
const serializationFailure = () => new DeadlockException(pgError("40001"));
const deadlock = () => new DeadlockException(pgError("40P01"));
const RACE_CONSTRAINT = "alerts_one_open_per_rule";
const openAlertRace = () => new UniqueConstraintViolationException(pgError("23505", {constraint: RACE_CONSTRAINT}));
const retryable = new Set([RACE_CONSTRAINT]);

function strategy(random = () => 0.5) {
  const logged: unknown[] = [];
  const slept: number[] = [];
  const events: RetryEvent[] = [];
  const s = new ExponentialBackoffRetryStrategy({info: (entry: unknown) => logged.push(entry)}, [RACE_CONSTRAINT]);
  s.random = random;
  s.sleep = async (ms) => {
    slept.push(ms);
  };
  s.onRetry((event) => events.push(event));
  return {s, logged, slept, events};
}

/** A task that fails with the given errors, one per call, then returns "done". */
function failing(...errors: Error[]) {
  const task = Object.assign(
    async () => {
      task.calls++;
      const error = errors.shift();
      if (error) throw error;
      return "done";
    },
    {calls: 0}
  );
  return task;
}

describe("ExponentialBackoffRetryStrategy", () => {
  it("retries a serialization failure twice with growing delays, then returns the result", async () => {
    const {s, logged, slept, events} = strategy();
    const task = failing(serializationFailure(), serializationFailure());
    await expect(s.acquire(task)).resolves.toBe("done");
    expect(task.calls).toBe(3);
    expect(slept).toEqual([15, 30]); // ceilings 20 and 40 ms, half fixed + half jitter (0.5)
    expect(events.map((e) => [e.attempt, e.ceilingMs, e.reason])).toEqual([
      [1, 20, "serialization_failure"],
      [2, 40, "serialization_failure"]
    ]);
    expect(logged[0]).toEqual({event: "TRANSACTION_RETRY", attempt: 1, delayMs: 15, ceilingMs: 20, reason: "serialization_failure"});
  });

  it("retries deadlocks and a race on a unique index declared retryable", async () => {
    const {s, events} = strategy();
    const task = failing(deadlock(), openAlertRace());
    await expect(s.acquire(task)).resolves.toBe("done");
    expect(events.map((e) => e.reason)).toEqual(["deadlock", "unique_violation:alerts_one_open_per_rule"]);
  });

  it.each([
    ["a plain error", new Error("boom")],
    [
      "a unique violation of another constraint",
      new UniqueConstraintViolationException(pgError("23505", {constraint: "devices_serial_number_unique"}))
    ],
    ["a foreign-key violation", new ForeignKeyConstraintViolationException(pgError("23503"))],
    ["a check violation code", pgError("23514")]
  ])("fails at once on %s", async (_label, error) => {
    const {s, slept} = strategy();
    const task = failing(error);
    await expect(s.acquire(task)).rejects.toBe(error);
    expect(task.calls).toBe(1);
    expect(slept).toEqual([]);
  });

  it("gives up after maxAttempts with a 503 that keeps the cause", async () => {
    const {s, slept} = strategy();
    const last = serializationFailure();
    const task = failing(serializationFailure(), serializationFailure(), serializationFailure(), serializationFailure(), last);
    const error = await s.acquire(task).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect((error as ServiceUnavailableError).status).toBe(503);
    expect((error as ServiceUnavailableError).cause).toBe(last);
    expect(task.calls).toBe(DEFAULT_RETRY_POLICY.maxAttempts);
    expect(slept).toHaveLength(DEFAULT_RETRY_POLICY.maxAttempts - 1);
    expect((error as Error).message).toBe(
      "The write kept conflicting with concurrent writes (serialization_failure, 5 attempts); retry later"
    );
  });

  it("says, when it gives up on a stale prepared plan, that the database refused the statements, not that writes conflicted", async () => {
    const {s} = strategy();
    const stale = () => pgError("0A000", {routine: "RevalidateCachedQuery"});
    const error = await s.acquire(failing(stale(), stale(), stale(), stale(), stale())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect((error as Error).message).toBe(
      "The database kept refusing the write's prepared statements (stale_prepared_plan, 5 attempts); retry later"
    );
  });

  it("keeps every delay between half its ceiling and the ceiling, and caps the ceiling", () => {
    const policy = {baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 10};
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, policy, () => 0).delayMs)).toEqual([10, 20, 40, 50, 50]);
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, policy, () => 1).delayMs)).toEqual([20, 40, 80, 100, 100]);
    // Whatever the jitter, a later retry never waits less than an earlier one below the cap.
    for (let attempt = 1; attempt < 3; attempt++) {
      expect(backoffDelay(attempt + 1, policy, () => 0).delayMs).toBeGreaterThanOrEqual(backoffDelay(attempt, policy, () => 1).delayMs);
    }
  });

  it("classifies raw pg errors by SQLSTATE as well", () => {
    expect(retryReason(pgError("40001"), retryable)).toBe("serialization_failure");
    expect(retryReason(pgError("40P01"), retryable)).toBe("deadlock");
    expect(retryReason(pgError("23505", {constraint: "alerts_one_open_per_rule"}), retryable)).toBe(
      "unique_violation:alerts_one_open_per_rule"
    );
    expect(retryReason(pgError("23505", {constraint: "temperature_readings_device_recorded_at_unique"}), retryable)).toBeUndefined();
    expect(retryReason(undefined, retryable)).toBeUndefined();
  });

  it("retries a transaction whose prepared plan a migration made stale, raw or converted, and no other 0A000", () => {
    const stale = () => pgError("0A000", {message: "cached plan must not change result type"});
    expect(retryReason(stale(), retryable)).toBe("stale_prepared_plan");
    expect(retryReason(new DriverException(stale()), retryable)).toBe("stale_prepared_plan");
    // In the server's language, told by the routine that raised it.
    expect(
      retryReason(
        pgError("0A000", {message: "le plan en cache ne doit pas modifier le type en résultat", routine: "RevalidateCachedQuery"}),
        retryable
      )
    ).toBe("stale_prepared_plan");
    expect(retryReason(pgError("0A000", {message: "cannot update view"}), retryable)).toBeUndefined();
  });
});
