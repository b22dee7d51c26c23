import {Entity, OptionalProps, PrimaryKey, Property} from "@mikro-orm/core";
import {Description, Example, Format, Ignore, Integer, Nullable, ReadOnly} from "@tsed/schema";

/**
 * The tenant registry: platform metadata in the `public` schema of the default database, never
 * tenant data. Nightly aggregation and `npm run migrate` walk it.
 */
@Entity({tableName: "tenants", schema: "public"})
export class Tenant {
  [OptionalProps]?: "timezone" | "rawRetentionDays" | "rawRetentionEffectiveAt" | "rawRetentionDaysBefore" | "createdAt";

  @PrimaryKey({length: 63})
  @ReadOnly()
  @Description("The tenant id; also the name of its Postgres schema")
  @Example("building_a")
  id!: string;

  @Property({length: 64, default: "UTC"})
  @Description("IANA timezone; DailyStats days are local days in it")
  @Example("Europe/Berlin")
  timezone: string = "UTC";

  @Property({type: "integer", nullable: true})
  @Integer()
  @Nullable(Number)
  @Description(
    "Days raw readings are kept (older ones are refused at once, and their months dropped nightly, after the grace when it was shortened); null keeps everything"
  )
  @Example(400)
  rawRetentionDays: number | null = null;

  /** Until this instant the nightly drop goes by rawRetentionDaysBefore (a shortening waits out its grace); null: by rawRetentionDays. */
  @Property({type: "datetime", nullable: true})
  @Ignore()
  rawRetentionEffectiveAt: Date | null = null;

  /** The retention the nightly drop keeps until rawRetentionEffectiveAt; null keeps everything. */
  @Property({type: "integer", nullable: true})
  @Ignore()
  rawRetentionDaysBefore: number | null = null;

  @Property({type: "datetime", defaultRaw: "now()"})
  @ReadOnly()
  @Format("date-time")
  createdAt: Date = new Date();
}
