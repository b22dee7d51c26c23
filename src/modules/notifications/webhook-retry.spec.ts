import {describe, expect, it} from "vitest";
import {nextRetryDelayMs} from "./webhook-retry.js";
import {parseRetryAfter} from "./webhook-sender.js";

const schedule = [0, 5_000, 300_000];

describe("nextRetryDelayMs", () => {
  it("follows the schedule with at most 20 % jitter and stops after its last attempt", () => {
    expect(nextRetryDelayMs(schedule, 1, null, () => 0)).toBe(4_000);
    expect(nextRetryDelayMs(schedule, 1, null, () => 1)).toBe(6_000);
    expect(nextRetryDelayMs(schedule, 2, null, () => 0.5)).toBe(300_000);
    expect(nextRetryDelayMs(schedule, 3, null)).toBeNull();
  });

  it("waits at least what Retry-After asks, at most a day", () => {
    expect(nextRetryDelayMs(schedule, 1, 60_000, () => 0.5)).toBe(60_000);
    expect(nextRetryDelayMs(schedule, 1, 10 * 86_400_000, () => 0.5)).toBe(86_400_000);
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("120")).toBe(120_000);
    expect(parseRetryAfter(new Date(61_000).toUTCString(), 1_000)).toBe(60_000);
    expect(parseRetryAfter("soon")).toBeNull();
    expect(parseRetryAfter(undefined)).toBeNull();
  });
});
