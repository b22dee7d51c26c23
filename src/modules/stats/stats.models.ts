import {CollectionOf, Default, Description, Example, Format, Integer, Maximum, Minimum, Nullable, Property, Required} from "@tsed/schema";
import {RawRetentionNotice} from "../../common/raw-retention.js";
import {DailyStats} from "./daily-stats.entity.js";

export const MAX_DAILY_RANGE_DAYS = 366;
export const MAX_HOURLY_HOURS = 168;

export class DailyStatsQuery {
  @Format("date")
  @Description("First local day, inclusive (default: 29 days before `to`)")
  @Example("2026-03-01")
  from?: string;

  @Format("date")
  @Description(`Last local day, inclusive (default: today in the tenant's timezone); at most ${MAX_DAILY_RANGE_DAYS} days after \`from\``)
  @Example("2026-03-30")
  to?: string;
}

export class HourlyQuery {
  @Integer()
  @Minimum(1)
  @Maximum(MAX_HOURLY_HOURS)
  @Default(24)
  @Description("How many local hours back, the current hour included")
  hours: number = 24;
}

export class HourlyBucket {
  @Required()
  @Format("date-time")
  @Description("Start of the local hour, as an instant")
  start!: Date;

  @Required()
  @Description("Start of the local hour in the tenant's timezone, with its offset")
  @Example("2026-03-28T15:00:00+05:30")
  localStart!: string;

  @Required() @Integer() readingCount!: number;
  @Required() @Example(21.4) avgTemperatureCelsius!: number;
  @Required() @Example(20.9) minTemperatureCelsius!: number;
  @Required() @Example(22.0) maxTemperatureCelsius!: number;
}

export class HourlyStats {
  @Required() @Format("uuid") deviceId!: string;
  @Required() @Example("Asia/Kolkata") timezone!: string;
  @Required() @Integer() hours!: number;

  @Required()
  @CollectionOf(HourlyBucket)
  @Description("Hours with at least one reading, oldest first")
  buckets!: HourlyBucket[];

  @Required()
  @Property(RawRetentionNotice)
  @Description("The tenant's raw retention, and whether these hours reach before it (hours there have no readings left)")
  rawRetention!: RawRetentionNotice;
}

export class WeeklySummary {
  @Required() @Integer() readingCount!: number;
  @Required() @Integer() @Description("Days of the week with readings") daysWithData!: number;
  @Required() @Nullable(Number) @Description("Average over all readings of the week; null without readings") avgTemperatureCelsius!:
    number | null;
  @Required() @Nullable(Number) minTemperatureCelsius!: number | null;
  @Required() @Nullable(Number) maxTemperatureCelsius!: number | null;
}

export class WeeklyStats {
  @Required() @Format("uuid") deviceId!: string;
  @Required() @Example("Europe/Berlin") timezone!: string;
  @Required() @Format("date") @Description("First local day (six days before `to`)") from!: string;
  @Required() @Format("date") @Description("Today in the tenant's timezone") to!: string;

  @Required()
  @CollectionOf(DailyStats)
  @Description("DailyStats rows of the seven days, oldest first; days without readings are absent")
  days!: DailyStats[];

  @Required()
  @Description("Over the seven days (readingCount 0 and null temperatures when the week has no readings)")
  summary!: WeeklySummary;
}
