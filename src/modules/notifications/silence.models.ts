import {
  CollectionOf,
  Default,
  Description,
  Format,
  Integer,
  MaxLength,
  Maximum,
  Minimum,
  MinLength,
  Nullable,
  Optional,
  Required
} from "@tsed/schema";

export class SilenceCreate {
  @Optional() @Format("uuid") @Description("Silence one device's alerts (operator)") deviceId?: string;
  @Optional()
  @Format("uuid")
  @Description("Silence one rule's alerts (operator); with deviceId, the rule must be that device's")
  ruleId?: string;
  @Optional() @Format("date-time") @Description("Default: now") startsAt?: Date;
  @Required() @Format("date-time") @Description("At most 7 days after startsAt, and in the future") endsAt!: Date;
  @Required() @MinLength(1) @MaxLength(500) @Description("Why (required)") comment!: string;
}

export class Silence {
  @Required() @Format("uuid") id!: string;
  @Required() @Nullable(String) @Format("uuid") deviceId!: string | null;
  @Required()
  @Nullable(String)
  @Format("uuid")
  @Description("With deviceId and ruleId both null, the silence covers the whole tenant")
  ruleId!: string | null;
  @Required() @Format("date-time") startsAt!: Date;
  @Required() @Format("date-time") @Description("Deleting a silence sets this to now") endsAt!: Date;
  @Required() comment!: string;
  @Required() @Description("The token subject of who created it") createdBy!: string;
  @Required() @Format("date-time") createdAt!: Date;
}

export class SilenceQuery {
  @Optional() @Description("true: only silences in force now; false: only the others") active?: boolean;
  @Integer() @Minimum(1) @Maximum(1_000_000) @Default(1) page: number = 1;
}

export class SilencePage {
  @Required() @CollectionOf(Silence) @Description("Newest first") items!: Silence[];
  @Required() @Integer() total!: number;
  @Required() @Integer() page!: number;
  @Required() @Integer() pageSize!: number;
}
