import type {Readable} from "node:stream";
import {Inject, Injectable} from "@tsed/common";
import {CopyOutDatabase} from "../../platform/db/copy-out.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {ExportFormat} from "./reading-export.models.js";

export interface ExportRange {
  from: Date;
  to: Date;
  deviceId?: string;
}

/** recordedAt as the API writes instants: ISO 8601, milliseconds, `Z`. */
const RECORDED_AT = `to_char(r."recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The export statement, oldest first: `[from, to)` of `recorded_at` prunes the partitions to the
 * months of the range; one device's readings come in order from the primary key
 * (device_id, recorded_at), the whole tenant's are sorted by Postgres (recordedAt, then device).
 * Values are literals (COPY takes no parameters), made by `literal`.
 */
export function exportQuerySql(schema: string, format: ExportFormat, range: ExportRange, literal: (value: string) => string): string {
  const conditions = [
    `r."recorded_at" >= ${literal(range.from.toISOString())}::timestamptz`,
    `r."recorded_at" < ${literal(range.to.toISOString())}::timestamptz`
  ];
  if (range.deviceId !== undefined) conditions.push(`r."device_id" = ${literal(range.deviceId)}::uuid`);
  const columns =
    format === ExportFormat.CSV
      ? `r."device_id" as "deviceId", d."serial_number" as "serialNumber", ${RECORDED_AT} as "recordedAt",
       r."temperature_celsius" as "temperatureCelsius", r."humidity" as "humidity", r."battery_level" as "batteryLevel"`
      : // One JSON object per row, built as text: cheaper than json_build_object. Numbers print as
        // Postgres' shortest exact float8 text (valid JSON: NaN and Infinity cannot pass the
        // table's CHECK constraints); the serial number is the only free text, escaped by to_json.
        `'{"deviceId":"' || r."device_id" || '","serialNumber":' || to_json(d."serial_number")::text || ',"recordedAt":"' || ${RECORDED_AT} ||
       '","temperatureCelsius":' || r."temperature_celsius" || ',"humidity":' || coalesce(r."humidity"::text, 'null') ||
       ',"batteryLevel":' || coalesce(r."battery_level"::text, 'null') || '}'`;
  return `select ${columns}
  from ${schema}."temperature_readings" r
  join ${schema}."devices" d on d."id" = r."device_id"
  where ${conditions.join(" and ")}
  order by r."recorded_at"${range.deviceId === undefined ? `, r."device_id"` : ""}`;
}

/**
 * COPY's output options per format. NDJSON rows are one text column written in CSV mode with
 * quote and delimiter characters that JSON text never contains raw (it escapes every control
 * character): no quoting ever applies, so each line is exactly the JSON object. (Text mode would
 * double every backslash of JSON escapes.)
 */
export const COPY_OPTIONS: Record<ExportFormat, string> = {
  [ExportFormat.CSV]: "format csv, header true",
  [ExportFormat.NDJSON]: "format csv, quote e'\\x01', delimiter e'\\x02'"
};

/** The statement the export sends: COPY of exportQuerySql with the format's options. */
export function exportCopySql(schema: string, format: ExportFormat, range: ExportRange, literal: (value: string) => string): string {
  return `copy (${exportQuerySql(schema, format, range, literal)}) to stdout with (${COPY_OPTIONS[format]})`;
}

@Injectable()
export class ReadingExportRepository {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private copyOut!: CopyOutDatabase;

  /** The readings of the range as the bytes of the file, streamed straight from Postgres. */
  open(format: ExportFormat, range: ExportRange): Promise<Readable> {
    return this.copyOut.copyOut(
      exportCopySql(quoteTenantSchema(this.tenant.tenantId), format, range, (value) => this.copyOut.literal(value))
    );
  }
}
