import {
  CollectionOf,
  Description,
  Enum,
  Example,
  ForwardGroups,
  Format,
  Integer,
  MaxItems,
  MinItems,
  Minimum,
  Property,
  Required
} from "@tsed/schema";
import {instantOf} from "../../platform/validation/strict-formats.js";
import {Alert} from "../alerts/alert.entity.js";
import {TemperatureReading} from "./reading.entity.js";

/** Largest batch firmware may send in one request. */
export const MAX_BATCH_SIZE = 1_000;

/** No reading is older than this: a device whose clock was never set reports 1970. */
export const EARLIEST_RECORDED_AT = "2000-01-01T00:00:00.000Z";

/** What a device sends for one reading (the `create` group of TemperatureReading), parsed. */
export interface ReadingInput {
  temperatureCelsius: number;
  humidity: number | null;
  batteryLevel: number | null;
  recordedAt: Date;
}

/** A reading as stored, and as the API returns it (the TemperatureReading model), as a plain object. */
export interface StoredReading extends ReadingInput {
  id: string;
  deviceId: string;
  createdAt: Date;
}

/**
 * The ingestion routes validate their body against the models (AJV, the same schema as the
 * OpenAPI document) but skip json-mapper, which would build a MikroORM entity instance per reading
 * (~14 ms per 1,000): this makes the input from the validated JSON, and nothing else is read.
 * Unmapped, `recordedAt` is still the date-time text the schema checked, read by instantOf (the
 * format's own reader: `new Date(text)` cost twice as much).
 */
export function readingInputOf(body: TemperatureReading): ReadingInput {
  const recordedAt: unknown = body.recordedAt;
  const ms = typeof recordedAt === "string" ? instantOf(recordedAt) : Number.NaN;
  return {
    temperatureCelsius: body.temperatureCelsius,
    humidity: body.humidity ?? null,
    batteryLevel: body.batteryLevel ?? null,
    recordedAt: Number.isNaN(ms) ? new Date(body.recordedAt) : new Date(ms)
  };
}

const EXAMPLE_READINGS = [
  {temperatureCelsius: 21.5, humidity: 45.2, batteryLevel: 0.87, recordedAt: "2026-03-28T10:30:00Z"},
  {temperatureCelsius: 21.7, humidity: 45.0, batteryLevel: 0.87, recordedAt: "2026-03-28T10:30:30Z"}
];

export class ReadingBatch {
  @Required()
  @MinItems(1)
  @MaxItems(MAX_BATCH_SIZE)
  @CollectionOf(TemperatureReading)
  @ForwardGroups()
  @Description(
    `1 to ${MAX_BATCH_SIZE} readings of one device, in any order (alert rules see them in recordedAt order). ` +
      "All or nothing: one invalid item rejects the whole batch with 400, naming each bad index and field."
  )
  @Example(EXAMPLE_READINGS)
  readings!: TemperatureReading[];
}

export class ReadingCreated {
  @Required()
  @Property(TemperatureReading)
  @Description("The stored reading (for a duplicate: the one stored first)")
  reading!: TemperatureReading;

  @Required()
  @CollectionOf(Alert)
  @Description("Alerts this reading opened, updated or resolved (empty for a duplicate)")
  alerts!: Alert[];

  @Required()
  @Description("True when a reading with the same recordedAt was already stored; nothing was written")
  @Example(false)
  duplicate!: boolean;
}

export enum ReceiptStatus {
  ACCEPTED = "accepted",
  DUPLICATE = "duplicate"
}

/** Per item of a batch: firmware may drop a reading from its buffer once it has a receipt. */
export class ReadingReceipt {
  @Required()
  @Integer()
  @Minimum(0)
  @Description("Position of the item in the request's `readings`")
  @Example(0)
  index!: number;

  @Required()
  @Format("date-time")
  @Example("2026-03-28T10:30:00.000Z")
  recordedAt!: Date;

  @Required()
  @Enum(ReceiptStatus)
  @Description(
    "`accepted`: stored now; `duplicate`: this device already had a reading at this recordedAt (stored earlier or earlier in this batch), nothing was written"
  )
  @Example("accepted")
  status!: ReceiptStatus;

  @Property()
  @Description("Id of the stored reading (accepted items only)")
  @Example("1048576")
  id?: string;
}

export class BatchReceipt {
  @Required()
  @Integer()
  @Description("Readings stored by this request")
  @Example(998)
  inserted!: number;

  @Required()
  @Integer()
  @Description("Readings that were already stored (retries), not stored again")
  @Example(2)
  duplicates!: number;

  @Required()
  @Integer()
  @Description("Alert episodes this batch opened")
  @Example(1)
  alertsFired!: number;

  @Required()
  @CollectionOf(ReadingReceipt)
  @Description("One receipt per item, in request order")
  items!: ReadingReceipt[];
}
