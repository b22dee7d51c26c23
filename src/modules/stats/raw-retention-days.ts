import {keptSince} from "../../common/raw-retention.js";
import {localDate} from "./local-time.js";

/**
 * The last local day (in `timezone`) whose raw readings the tenant's raw retention no longer
 * keeps whole — the day `keptSince` falls in — or null when every day's readings are kept. A day
 * up to it must not be recomputed: a recompute would replace the DailyStats counted while all its
 * readings were there with what is left of them (nothing, once its month is dropped).
 */
export function lastDayPastRetention(rawRetentionDays: number | null, timezone: string, now: Date = new Date()): string | null {
  const since = keptSince(rawRetentionDays, now);
  return since === null ? null : localDate(since, timezone);
}
