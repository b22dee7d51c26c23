import {Description, Example, Format, MaxLength, MinLength, Required} from "@tsed/schema";

export class TenantSettingsPatch {
  @Required()
  @MinLength(1)
  @MaxLength(64)
  @Description("IANA timezone name; DailyStats days are local days in it (existing rows keep the days they were computed for)")
  @Example("Europe/Berlin")
  timezone!: string;
}

export class TenantSettings {
  @Required() @Example("building_a") id!: string;
  @Required() @Example("Europe/Berlin") timezone!: string;
  @Required() @Format("date-time") createdAt!: Date;
}
