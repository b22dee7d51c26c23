import {BigIntType, Entity, Index, OptionalProps, PrimaryKey, Property, Unique} from "@mikro-orm/core";
import {Description, Example, Format, Integer, ReadOnly} from "@tsed/schema";

/**
 * Pre-computed statistics of one device for one local day of its tenant (analytics context, its
 * own database). There is no foreign key to the device (another database): `tenant_id` keeps the
 * rows of different tenants apart, and every query filters on it.
 */
@Entity({tableName: "daily_stats"})
@Unique({name: "daily_stats_tenant_device_date_unique", properties: ["tenantId", "deviceId", "date"]})
@Index({name: "daily_stats_tenant_date_index", properties: ["tenantId", "date"]})
export class DailyStats {
  [OptionalProps]?: "updatedAt";

  @PrimaryKey({type: new BigIntType("string"), autoincrement: true})
  @ReadOnly()
  id!: string;

  @Property({length: 63})
  @ReadOnly()
  @Description("The tenant the device belongs to")
  tenantId!: string;

  @Property({type: "uuid"})
  @ReadOnly()
  @Format("uuid")
  deviceId!: string;

  @Property({type: "date"})
  @ReadOnly()
  @Format("date")
  @Description("The local day in the tenant's timezone (YYYY-MM-DD)")
  @Example("2026-03-28")
  date!: string;

  @Property({type: "double"})
  @ReadOnly()
  @Example(21.7)
  avgTemperatureCelsius!: number;

  @Property({type: "double"})
  @ReadOnly()
  @Example(19.2)
  minTemperatureCelsius!: number;

  @Property({type: "double"})
  @ReadOnly()
  @Example(24.9)
  maxTemperatureCelsius!: number;

  @Property({type: "integer"})
  @ReadOnly()
  @Integer()
  @Example(2880)
  readingCount!: number;

  @Property({type: "datetime", onCreate: () => new Date(), onUpdate: () => new Date()})
  @ReadOnly()
  @Format("date-time")
  updatedAt: Date = new Date();
}
