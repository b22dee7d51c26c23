import {BigIntType, Entity, ManyToOne, OptionalProps, PrimaryKey, Property, Unique} from "@mikro-orm/core";
import {Description, Example, Format, Groups, Maximum, Minimum, Nullable, ReadOnly, Required} from "@tsed/schema";
import {MAX_TEMPERATURE_CELSIUS, MIN_TEMPERATURE_CELSIUS} from "../../common/temperature.js";
import {JsonNumbers} from "../../platform/validation/json-numbers.keyword.js";
import {Device} from "../devices/device.entity.js";

/**
 * One temperature sample. The table's primary key is (device_id, recorded_at): it makes a retried
 * post a duplicate instead of a second row, orders the history for keyset pagination, and includes
 * recorded_at, the key of the monthly partitions (Migration20261202000100). `id` is the API's
 * handle of a reading (and MikroORM's identity): assigned by the table's identity, unique by
 * construction, without an index of its own.
 */
@Entity({tableName: "temperature_readings", schema: "*"})
@Unique({name: "temperature_readings_pkey", properties: ["deviceId", "recordedAt"]})
@JsonNumbers("temperatureCelsius", "humidity", "batteryLevel")
export class TemperatureReading {
  [OptionalProps]?: "createdAt";

  @PrimaryKey({type: new BigIntType("string"), autoincrement: true})
  @Groups("!create")
  @ReadOnly()
  @Required()
  @Description("Server-assigned id (a 64-bit integer, as a string)")
  @Example("1048576")
  id!: string;

  // No foreign key in the database (Migration20261122020000): the ingest statement checks the device.
  @ManyToOne(() => Device, {mapToPk: true, fieldName: "device_id", createForeignKeyConstraint: false})
  @Groups("!create")
  @ReadOnly()
  @Required()
  @Format("uuid")
  @Description("The device that took the sample")
  deviceId!: string;

  @Property({type: "double"})
  @Required()
  @Minimum(MIN_TEMPERATURE_CELSIUS)
  @Maximum(MAX_TEMPERATURE_CELSIUS)
  @Description("Temperature in degrees Celsius")
  @Example(21.5)
  temperatureCelsius!: number;

  @Property({type: "double", nullable: true})
  @Nullable(Number)
  @Minimum(0)
  @Maximum(100)
  @Description("Relative humidity in percent")
  @Example(45.2)
  humidity?: number | null;

  @Property({type: "double", nullable: true})
  @Nullable(Number)
  @Minimum(0)
  @Maximum(1)
  @Description("Battery charge, 0 (empty) to 1 (full)")
  @Example(0.87)
  batteryLevel?: number | null;

  @Property({type: "datetime"})
  @Required()
  @Format("date-time")
  @Description("When the device took the sample (ISO 8601 with offset)")
  @Example("2026-03-28T10:30:00Z")
  recordedAt!: Date;

  @Property({type: "datetime", defaultRaw: "now()"})
  @Groups("!create")
  @ReadOnly()
  @Required()
  @Format("date-time")
  @Description("When the server stored it")
  createdAt: Date = new Date();
}
