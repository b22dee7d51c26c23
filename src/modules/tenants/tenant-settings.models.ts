import {Description, Example, Format, MaxLength, MinLength, Property, Required} from "@tsed/schema";

export class TenantSettingsPatch {
  @Required()
  @MinLength(1)
  @MaxLength(64)
  @Description("IANA timezone name; DailyStats days are local days in it (a change recomputes every day of them, see `statsRecomputeJobId`)")
  @Example("Europe/Berlin")
  timezone!: string;
}

export class TenantSettings {
  @Required() @Example("building_a") id!: string;
  @Required() @Example("Europe/Berlin") timezone!: string;
  @Required() @Format("date-time") createdAt!: Date;

  @Property()
  @Description("Only when the timezone just changed: the job recomputing every day of DailyStats in the new local days (`GET /admin/aggregations/{jobId}`)")
  @Example("timezone.building_a.6f1c2a9e-8d0b-4b7a-9c55-1f2e3d4c5b6a")
  statsRecomputeJobId?: string;
}
