import {Inject, Injectable} from "@tsed/common";
import {InvalidInputError} from "../../common/errors.js";
import {rawRetentionHeaders, rawRetentionNotice} from "../../common/raw-retention.js";
import type {Download} from "../../platform/streaming/send-download.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {TenantSettingsCache} from "../../platform/tenancy/tenant-settings.cache.js";
import {DeviceService} from "../devices/device.service.js";
import {ExportFormat, type ReadingExportQuery} from "./reading-export.models.js";
import {ReadingExportRepository} from "./reading-export.repository.js";

const CONTENT_TYPES: Record<ExportFormat, string> = {
  [ExportFormat.CSV]: "text/csv; charset=utf-8; header=present",
  [ExportFormat.NDJSON]: "application/x-ndjson; charset=utf-8"
};

/**
 * Instants Postgres and ISO 8601 text agree on: years 1 to 9999 (year 0000 is valid RFC 3339 but
 * not a Postgres timestamp). A range reaching beyond is cut to them; no reading lies outside.
 */
const EARLIEST = Date.parse("0001-01-01T00:00:00.000Z");
const LATEST = Date.parse("9999-12-31T23:59:59.999Z");
const clamp = (instant: Date) => new Date(Math.min(LATEST, Math.max(EARLIEST, instant.getTime())));

/** `2026-03-01T00:00:00.000Z` → `20260301T000000Z` (no characters a file system refuses). */
const compactInstant = (instant: Date) =>
  instant
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
const safeFileNamePart = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 64);

/**
 * The streamed export of a tenant's (or one device's) readings: checks what can be checked before
 * the first byte (range, device, retention), then hands over a stream straight from Postgres.
 */
@Injectable()
export class ReadingExportService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private devices!: DeviceService;

  @Inject()
  private settings!: TenantSettingsCache;

  @Inject()
  private exports!: ReadingExportRepository;

  /** @throws InvalidInputError (empty range), NotFoundError (device), ServiceUnavailableError (no export connection free) */
  async open(query: ReadingExportQuery): Promise<Download> {
    const {format, deviceId} = query;
    if (query.from.getTime() >= query.to.getTime())
      throw new InvalidInputError("`from` must be before `to` (from is inclusive, to exclusive)", [{field: "from"}, {field: "to"}]);
    const [from, to] = [clamp(query.from), clamp(query.to)];
    const device = deviceId === undefined ? undefined : await this.devices.get(deviceId);
    const tenantId = this.tenant.tenantId;
    const {rawRetentionDays} = await this.settings.get(tenantId);
    const stream = await this.exports.open(format, {from, to, deviceId});
    const parts = [
      tenantId,
      "readings",
      ...(device ? [safeFileNamePart(device.serialNumber)] : []),
      compactInstant(from),
      compactInstant(to)
    ];
    return {
      stream,
      contentType: CONTENT_TYPES[format],
      fileName: `${parts.join("_")}.${format}`,
      headers: rawRetentionHeaders(rawRetentionNotice(rawRetentionDays, from))
    };
  }
}
