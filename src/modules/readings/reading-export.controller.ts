import {AcceptMime, Context, Controller, Get, Inject, QueryParams} from "@tsed/common";
import {Description, Name, Returns, Summary} from "@tsed/schema";
import {AppConfig} from "../../config/app-config.js";
import {ErrorBody} from "../../common/error-body.model.js";
import {RAW_RETENTION_HEADER_DOCS} from "../../common/raw-retention.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {ExportSlot} from "../../platform/rate-limit/export-slot.middleware.js";
import {HeavyRead} from "../../platform/rate-limit/heavy-read.middleware.js";
import {sendDownload} from "../../platform/streaming/send-download.js";
import {EXPORT_COLUMNS, ReadingExportQuery} from "./reading-export.models.js";
import {ReadingExportService} from "./reading-export.service.js";

const DOWNLOAD = "The file (`Content-Disposition: attachment`): CSV with a header line, or NDJSON";

@Controller("/readings")
@Name("Readings")
@Authenticated()
export class ReadingExportController {
  @Inject()
  private exports!: ReadingExportService;

  @Inject()
  private config!: AppConfig;

  @Get("/export")
  // Applied bottom-up: the heavy-read slot is taken first, then the export slot.
  @ExportSlot()
  @HeavyRead()
  @Summary("Download a range of readings as CSV or NDJSON, streamed")
  @Description(
    `The tenant's readings (or one device's) recorded in [from, to), oldest first (ties by device id), as a file download: columns ${EXPORT_COLUMNS.map((c) => `\`${c}\``).join(", ")}. ` +
      "Any range: the file is streamed from Postgres as it is read, in constant memory; a slow reader slows the query down. " +
      "An error after the first byte cuts the connection (a truncated transfer), so a file that arrived whole is complete. " +
      "Fair use: at most EXPORT_MAX_PER_TENANT exports of a tenant run at once per instance (one more is a 429 with Retry-After); " +
      "a client that takes fewer than EXPORT_MIN_BYTES_PER_S bytes per second over EXPORT_RATE_WINDOW_MS, or none for EXPORT_STALL_TIMEOUT_MS, is disconnected; " +
      "an export's query runs at most EXPORT_STATEMENT_TIMEOUT_MS (10 minutes by default): split longer ranges. " +
      "With a raw retention, the `Raw-Retention-*` headers say whether the range reaches before the readings that are kept."
  )
  @AcceptMime("text/csv", "application/x-ndjson", "application/json")
  @(Returns(200, String).ContentType("application/x-ndjson").Description(DOWNLOAD))
  @(Returns(200, String)
    .ContentType("text/csv")
    .Description(DOWNLOAD)
    .Headers({
      "Content-Disposition": {type: "string", description: 'attachment; filename="<tenant>_readings[_<serial>]_<from>_<to>.<format>"'},
      ...RAW_RETENTION_HEADER_DOCS
    }))
  @(Returns(400, ErrorBody).Description("Missing or invalid from/to/format/deviceId, or from not before to"))
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  @(Returns(429, ErrorBody).Description(
    "This tenant already runs EXPORT_MAX_PER_TENANT exports on this instance (or too many heavy reads): retry after Retry-After"
  ))
  @(Returns(503, ErrorBody).Description("Every export connection is busy: retry after Retry-After"))
  async export(@QueryParams() query: ReadingExportQuery, @Context() $ctx: Context): Promise<void> {
    const download = await this.exports.open(query);
    const {stallTimeoutMs, minBytesPerSecond, rateWindowMs} = this.config.export;
    await sendDownload($ctx.request.raw, $ctx.response.raw, download, {stallTimeoutMs, minBytesPerSecond, rateWindowMs});
  }
}
