import {Inject, Injectable} from "@tsed/common";
import {Description, Example, Format, Integer, Nullable, Required} from "@tsed/schema";
import {TenantContext} from "../platform/tenancy/tenant-context.js";
import {TenantSettingsCache} from "../platform/tenancy/tenant-settings.cache.js";
import {InvalidInputError} from "./errors.js";
import {localDate} from "./local-time.js";

/*
 * Raw retention, all of it in one module: the setting's bounds, the instant before which readings
 * are not kept, the notice that reads report, the last local day a recompute must leave alone
 * (stats), and the rule that refuses readings past it (ingestion). The partition drop
 * (ReadingPartitionsService) and the tenant setting (tenants/) use it.
 */

/**
 * A tenant's raw retention (`rawRetentionDays`, null: keep everything): readings recorded before
 * `now - rawRetentionDays` are refused, and the nightly job drops every monthly partition that
 * ends before that instant (a shortened retention only after its grace: changeRawRetention). DailyStats are kept. The smallest retention still leaves the nightly
 * aggregation the raw readings of the local yesterday it recomputes (which began at most 48 hours
 * ago, whatever the timezone).
 */
export const MIN_RAW_RETENTION_DAYS = 3;
export const MAX_RAW_RETENTION_DAYS = 36_500;

const DAY_MS = 86_400_000;

/**
 * A tenant's raw retention as stored: `days` (the setting, refused readings follow it at once) and,
 * while a shortening waits out its grace, the retention the nightly drop keeps until `effectiveAt`.
 */
export interface RawRetentionState {
  days: number | null;
  /** Until this instant the nightly drop goes by `daysBefore`; null (or past): by `days`. */
  effectiveAt: Date | null;
  /** null keeps everything. */
  daysBefore: number | null;
}

/** `a` keeps raw readings at least as long as `b` (null: forever). */
const keepsAtLeastAsLong = (a: number | null, b: number | null) => a === null || (b !== null && a >= b);

/** The retention the nightly drop applies at `now`: a shortening's new value only once its grace is over. */
export function dropRetentionDays(state: RawRetentionState, now: Date = new Date()): number | null {
  return state.effectiveAt !== null && now.getTime() < state.effectiveAt.getTime() ? state.daysBefore : state.days;
}

/**
 * The state after an admin sets the retention to `days` at `now`. A value that keeps at least as
 * long as the one the drop applies now (lengthening, removing, or setting back within the grace)
 * is in force at once and cancels any pending shortening: nothing it would not have dropped
 * anyway is dropped. A shorter one refuses older readings at once, but the drop keeps going by
 * the retention in force now until `now + graceMs`; a further shortening restarts the grace.
 * Setting the value it already has changes nothing (a repeated PATCH does not restart the grace).
 */
export function changeRawRetention(state: RawRetentionState, days: number | null, now: Date, graceMs: number): RawRetentionState {
  if (days === state.days) return state;
  const inForce = dropRetentionDays(state, now);
  if (keepsAtLeastAsLong(days, inForce) || graceMs === 0) return {days, effectiveAt: null, daysBefore: null};
  return {days, effectiveAt: new Date(now.getTime() + graceMs), daysBefore: inForce};
}

/** When the drop starts going by `days`, while that is still ahead of `now`; null when it already does. */
export function pendingEffectiveAt(state: RawRetentionState, now: Date = new Date()): Date | null {
  return state.effectiveAt !== null && now.getTime() < state.effectiveAt.getTime() ? state.effectiveAt : null;
}

/** Readings recorded before this instant are not kept (null: all are). */
export function keptSince(rawRetentionDays: number | null, now: Date = new Date()): Date | null {
  return rawRetentionDays === null ? null : new Date(now.getTime() - rawRetentionDays * DAY_MS);
}

/**
 * What a read of raw readings (or of what they were aggregated into) tells its caller about the
 * retention: whether part of the range asked for lies before `keptSince`, where raw readings have
 * been (or are about to be) dropped, so that an empty or short answer is not taken for "no data".
 */
export class RawRetentionNotice {
  @Required()
  @Integer()
  @Nullable(Number)
  @Description("The tenant's raw retention in days; null: raw readings are kept forever")
  @Example(400)
  days!: number | null;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description(
    "Raw readings recorded before this instant are not kept (whole months are dropped nightly once they end before it); null without a retention"
  )
  @Example("2025-10-28T14:05:00.000Z")
  keptSince!: Date | null;

  @Required()
  @Description(
    "True when the range asked for starts before `keptSince` (or has no start): the raw readings of that part are gone, not absent"
  )
  @Example(false)
  reachesPastRetention!: boolean;
}

/**
 * @param rangeStart the earliest instant the request covers; null when it is unbounded (a history
 *   without `from`)
 */
export function rawRetentionNotice(rawRetentionDays: number | null, rangeStart: Date | null, now: Date = new Date()): RawRetentionNotice {
  const since = keptSince(rawRetentionDays, now);
  return {
    days: rawRetentionDays,
    keptSince: since,
    reachesPastRetention: since !== null && (rangeStart === null || rangeStart.getTime() < since.getTime())
  };
}

/**
 * The notice as response headers, for answers whose body cannot carry it (a JSON array, a CSV
 * file). None when the tenant keeps everything.
 */
export function rawRetentionHeaders(notice: RawRetentionNotice): Record<string, string> {
  if (notice.days === null || notice.keptSince === null) return {};
  return {
    "Raw-Retention-Days": String(notice.days),
    "Raw-Retention-Kept-Since": notice.keptSince.toISOString(),
    "Raw-Retention-Reaches-Past": String(notice.reachesPastRetention)
  };
}

/** The headers rawRetentionHeaders may set, for the OpenAPI document. */
export const RAW_RETENTION_HEADER_DOCS = {
  "Raw-Retention-Days": {type: "integer", description: "The tenant's raw retention in days (absent: raw readings are kept forever)"},
  "Raw-Retention-Kept-Since": {type: "string", description: "Raw readings recorded before this instant (ISO 8601) are not kept"},
  "Raw-Retention-Reaches-Past": {type: "boolean", description: "true when the range asked for starts before Raw-Retention-Kept-Since"}
} as const;

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

/**
 * Readings older than the tenant's raw retention are refused (400), like readings from the
 * future: their month is dropped, or about to be, so storing them would only lose them again —
 * and the nightly drop must be able to rely on no new rows arriving in expired months. The
 * setting comes from TenantSettingsCache: no query on the ingest path.
 */
@Injectable()
export class ReadingRetentionRule {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private settings!: TenantSettingsCache;

  /** Throws InvalidInputError naming every offending item (`/readings/3/recordedAt`), like the schema validation does. */
  async assertKept(inputs: readonly {recordedAt: Date}[], pathOf: (index: number) => string): Promise<void> {
    const since = keptSince((await this.settings.get(this.tenant.tenantId)).rawRetentionDays);
    if (since === null) return;
    const sinceMs = since.getTime();
    const errors: Record<string, unknown>[] = [];
    inputs.forEach((input, index) => {
      if (input.recordedAt.getTime() >= sinceMs) return;
      errors.push({
        instancePath: `${pathOf(index)}/recordedAt`,
        keyword: "rawRetention",
        message: "must not be older than the tenant's raw retention",
        params: {keptSince: since.toISOString()}
      });
    });
    if (errors.length)
      throw new InvalidInputError(
        `recordedAt must not be before ${since.toISOString()}: the tenant keeps raw readings for a limited time (rawRetentionDays)`,
        errors
      );
  }
}
