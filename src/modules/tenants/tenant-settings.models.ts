import {
  Description,
  Example,
  Format,
  Integer,
  Maximum,
  MaxLength,
  Minimum,
  MinLength,
  MinProperties,
  Nullable,
  Property,
  Required
} from "@tsed/schema";
import {MAX_RAW_RETENTION_DAYS, MIN_RAW_RETENTION_DAYS} from "../../common/raw-retention.js";
import {JsonNumbers} from "../../platform/validation/json-numbers.keyword.js";

/** At least one setting to change; an absent one is left as it is. `"30"` is not 30 days (no coercion). */
@MinProperties(1)
@JsonNumbers("rawRetentionDays")
export class TenantSettingsPatch {
  @MinLength(1)
  @MaxLength(64)
  @Description(
    "IANA timezone name; DailyStats days are local days in it (a change recomputes every day of them, see `statsRecomputeJobId`)"
  )
  @Example("Europe/Berlin")
  timezone?: string;

  @Integer()
  @Nullable(Number)
  @Minimum(MIN_RAW_RETENTION_DAYS)
  @Maximum(MAX_RAW_RETENTION_DAYS)
  @Description(
    `Days raw readings are kept (${MIN_RAW_RETENTION_DAYS} to ${MAX_RAW_RETENTION_DAYS}); null keeps them forever. ` +
      "Readings recorded earlier are refused (400) at once, and every night each month that ended before `now - rawRetentionDays` is dropped whole. " +
      "A shorter value than the one in force is dropped by only after a grace period (RETENTION_GRACE_DAYS, default 7; see `rawRetentionEffectiveAt`): " +
      "setting it back (longer, or null) within the grace drops nothing. DailyStats are kept. Lengthening it does not bring back months already dropped."
  )
  @Example(400)
  rawRetentionDays?: number | null;
}

export class TenantSettings {
  @Required() @Example("building_a") id!: string;
  @Required() @Example("Europe/Berlin") timezone!: string;

  @Required()
  @Integer()
  @Nullable(Number)
  @Description("Days raw readings are kept; null: forever")
  @Example(400)
  rawRetentionDays!: number | null;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description(
    "While a shortened `rawRetentionDays` waits out its grace period: when months start being dropped by it (until then by the retention in force before). " +
      "null: months are dropped by `rawRetentionDays` already (or nothing, without a retention)"
  )
  @Example(null)
  rawRetentionEffectiveAt!: Date | null;

  @Required() @Format("date-time") createdAt!: Date;

  @Property()
  @Description(
    "Only when the timezone just changed: the job recomputing every day of DailyStats in the new local days (`GET /admin/aggregations/{jobId}`)"
  )
  @Example("timezone.building_a.6f1c2a9e-8d0b-4b7a-9c55-1f2e3d4c5b6a")
  statsRecomputeJobId?: string;
}
