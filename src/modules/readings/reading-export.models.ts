import {Default, Description, Enum, Example, Format, Required} from "@tsed/schema";

export enum ExportFormat {
  CSV = "csv",
  NDJSON = "ndjson"
}

export class ReadingExportQuery {
  @Required()
  @Format("date-time")
  @Description("First instant, inclusive")
  @Example("2026-03-01T00:00:00Z")
  from!: Date;

  @Required()
  @Format("date-time")
  @Description("Last instant, exclusive")
  @Example("2026-04-01T00:00:00Z")
  to!: Date;

  @Enum(ExportFormat)
  @Default(ExportFormat.CSV)
  @Description("`csv` (RFC 4180, with a header line) or `ndjson` (one JSON object per line)")
  format: ExportFormat = ExportFormat.CSV;

  @Format("uuid")
  @Description("Only this device's readings (default: every device of the tenant)")
  deviceId?: string;
}

/** The columns of an export, in order (CSV header, NDJSON keys). */
export const EXPORT_COLUMNS = ["deviceId", "serialNumber", "recordedAt", "temperatureCelsius", "humidity", "batteryLevel"] as const;
