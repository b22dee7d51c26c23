/** After failing this long without a success in between, an endpoint is disabled. */
export const DISABLE_AFTER_FAILING_MS = 5 * 86_400_000;

/** The longest Retry-After honoured: a receiver cannot park a delivery for longer. */
export const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

/**
 * The delay before attempt `attempt + 1` (attempts count from 1) after attempt `attempt` failed,
 * or null when the schedule has no attempts left. The schedule's delay gets ±20 % jitter so that
 * receivers coming back from an outage are not hit by every retry at the same instant; a longer
 * Retry-After of the receiver wins (bounded by MAX_RETRY_AFTER_MS).
 */
export function nextRetryDelayMs(
  scheduleMs: readonly number[],
  attempt: number,
  retryAfterMs: number | null,
  random = Math.random
): number | null {
  if (attempt >= scheduleMs.length) return null;
  const base = scheduleMs[attempt]!;
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}
