import {Description, Enum, Example, Format, Integer, Nullable, Pattern, Property, Required} from "@tsed/schema";

export class AggregationRequest {
  @Format("date")
  @Description("The local day to recompute (default: yesterday in the tenant's timezone)")
  @Example("2026-03-28")
  date?: string;
}

export class AggregationAccepted {
  @Required()
  @Example("manual.building_a.2026-03-28")
  @Description("The day's job: asking again while it is pending answers the same one")
  jobId!: string;
}

export const JOB_ID_PATTERN = /^[a-z0-9_.-]{1,200}$/;

export class AggregationResultBody {
  @Required() tenantId!: string;
  @Required() @Nullable(String) @Format("date") @Description("The day recomputed; null when every day of the tenant was") date!:
    string | null;
  @Required() @Integer() @Description("Days recomputed") days!: number;
  @Required() @Integer() devices!: number;
  @Required() @Integer() readings!: number;
  @Required() @Integer() @Description("DailyStats rows inserted or changed") statsWritten!: number;
  @Required() @Integer() @Description("DailyStats rows removed (no readings that day any more)") statsDeleted!: number;
}

export class AggregationStatusBody {
  @Required() @Pattern(JOB_ID_PATTERN) jobId!: string;
  @Required() tenantId!: string;
  @Required()
  @Nullable(String)
  @Format("date")
  @Description("The day a one-day job recomputes; null when the job recomputes every day of the tenant")
  date!: string | null;
  @Required()
  @Enum("nightly", "manual", "timezone")
  @Description("`timezone`: every day, after the tenant's timezone changed")
  trigger!: string;
  @Required() @Enum("waiting", "active", "completed", "failed", "delayed", "unknown") state!: string;
  @Required() @Integer() @Description("Percent done: of the day's devices, or of the tenant's days") progress!: number;
  @Required() @Nullable(Number) devicesDone!: number | null;
  @Required() @Nullable(Number) devicesTotal!: number | null;
  @Required() @Nullable(Number) @Description("Every-day jobs only") daysDone!: number | null;
  @Required() @Nullable(Number) @Description("Every-day jobs only") daysTotal!: number | null;
  @Required() @Integer() attemptsMade!: number;
  @Property(AggregationResultBody) @Description("Only once completed") result?: AggregationResultBody;
  @Required() @Nullable(String) failedReason!: string | null;
  @Required() @Format("date-time") enqueuedAt!: Date;
  @Required() @Nullable(Date) @Format("date-time") finishedAt!: Date | null;
}
