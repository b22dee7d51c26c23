import {
  CollectionOf,
  Default,
  Description,
  Example,
  Format,
  Integer,
  Maximum,
  Minimum,
  Nullable,
  Pattern,
  Property,
  Required
} from "@tsed/schema";
import {RawRetentionNotice} from "../../common/raw-retention.js";
import {MAX_TEMPERATURE_CELSIUS, MIN_TEMPERATURE_CELSIUS} from "../../common/temperature.js";
import {TemperatureReading} from "./reading.entity.js";

export const DEFAULT_HISTORY_LIMIT = 50;
export const MAX_HISTORY_LIMIT = 500;
/** How many days of history a `minTemp` filter may read (see ReadingHistoryService). */
export const MIN_TEMP_RANGE_DAYS = 31;

export class ReadingHistoryQuery {
  @Integer()
  @Minimum(1)
  @Maximum(MAX_HISTORY_LIMIT)
  @Default(DEFAULT_HISTORY_LIMIT)
  @Description(`Readings per page (at most ${MAX_HISTORY_LIMIT})`)
  limit: number = DEFAULT_HISTORY_LIMIT;

  @Pattern(/^[A-Za-z0-9_-]{1,200}$/)
  @Description("`nextCursor` of the previous page (opaque)")
  cursor?: string;

  @Format("date-time")
  @Description("Only readings recorded at or after this instant (inclusive)")
  @Example("2026-03-28T00:00:00Z")
  from?: Date;

  @Format("date-time")
  @Description("Only readings recorded before this instant (exclusive)")
  @Example("2026-03-29T00:00:00Z")
  to?: Date;

  @Minimum(MIN_TEMPERATURE_CELSIUS)
  @Maximum(MAX_TEMPERATURE_CELSIUS)
  @Description(
    `Only readings at or above this temperature (°C). With it, \`from\` and \`to\` may be at most ${MIN_TEMP_RANGE_DAYS} days apart, and default to the ${MIN_TEMP_RANGE_DAYS} days before \`to\` (or before now)`
  )
  minTemp?: number;
}

export class ReadingPage {
  @Required()
  @CollectionOf(TemperatureReading)
  @Description("Newest first")
  data!: TemperatureReading[];

  @Required() hasNextPage!: boolean;

  @Required()
  @Nullable(String)
  @Description("Pass as `cursor` for the next (older) page; null on the last page")
  nextCursor!: string | null;

  @Required() @Integer() @Description("Readings in this page") count!: number;

  @Required()
  @Property(RawRetentionNotice)
  @Description(
    "The tenant's raw retention, and whether the range asked for (`from`, or no `from` at all) reaches before it: the history then ends where the kept readings do"
  )
  rawRetention!: RawRetentionNotice;
}

export class ExplainReadingsQuery {
  @Required() @Format("uuid") deviceId!: string;

  @Format("date-time")
  @Description("Plan the history query restricted to readings from this instant")
  from?: Date;

  @Default(false)
  @Description("Also run the query (EXPLAIN ANALYZE, BUFFERS): actual rows and timings")
  analyze: boolean = false;
}

export class ExplainResult {
  @Required() @Description("The SQL of the history query, with its parameters inlined") query!: string;
  @Required() @CollectionOf(Object) @Description("Postgres' plan, `EXPLAIN (FORMAT JSON)`") plan!: Record<string, unknown>[];
}
