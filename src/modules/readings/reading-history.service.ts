import {Inject, Injectable} from "@tsed/common";
import {InvalidInputError, NotFoundError} from "../../common/errors.js";
import {rawRetentionNotice} from "../../common/raw-retention.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {TenantSettingsCache} from "../../platform/tenancy/tenant-settings.cache.js";
import {isStrictDateTime} from "../../platform/validation/strict-formats.js";
import {DeviceService} from "../devices/device.service.js";
import type {StoredReading} from "./reading.models.js";
import {DEFAULT_HISTORY_LIMIT, MIN_TEMP_RANGE_DAYS, type ReadingHistoryQuery, type ReadingPage} from "./reading-history.models.js";
import {type HistoryFilter, ReadingHistoryRepository} from "./reading-history.repository.js";

const CURSOR_VERSION = 1;
const DAY_MS = 86_400_000;
const CURSOR_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * The cursor is opaque to clients: base64url of `{v, t}` where `t` is the last row's recordedAt
 * at microsecond precision. Anything else is a 400, never a 500 or a silently wrong page.
 */
export function encodeCursor(recordedAt: string): string {
  return Buffer.from(JSON.stringify({v: CURSOR_VERSION, t: recordedAt})).toString("base64url");
}

export function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as {v?: unknown; t?: unknown};
    if (parsed?.v === CURSOR_VERSION && typeof parsed.t === "string" && CURSOR_INSTANT.test(parsed.t) && isStrictDateTime(parsed.t)) {
      return parsed.t;
    }
  } catch {
    // fall through
  }
  throw new InvalidInputError("Invalid cursor: pass the `nextCursor` of a previous page unchanged", [{field: "cursor"}]);
}

@Injectable()
export class ReadingHistoryService {
  @Inject()
  private devices!: DeviceService;

  @Inject()
  private history!: ReadingHistoryRepository;

  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private settings!: TenantSettingsCache;

  /**
   * Two statements whatever the page size, the device check and the page (the retention is cached);
   * three when the page reaches below its two newest months (ReadingHistoryRepository).
   */
  async page(deviceId: string, query: ReadingHistoryQuery): Promise<ReadingPage> {
    const filter = this.toFilter(deviceId, query);
    await this.devices.get(deviceId);
    const {rawRetentionDays} = await this.settings.get(this.tenant.tenantId);
    // One row more than asked tells whether another page follows, without a count.
    const rows = await this.history.page({...filter, limit: query.limit + 1});
    const hasNextPage = rows.length > query.limit;
    const data = rows.slice(0, query.limit);
    return {
      data: data.map(toReading),
      hasNextPage,
      nextCursor: hasNextPage ? encodeCursor(data.at(-1)!.cursorAt) : null,
      count: data.length,
      rawRetention: rawRetentionNotice(rawRetentionDays, query.from ?? null)
    };
  }

  /** One statement: the device check and its newest reading together (ReadingHistoryRepository.latest). */
  async latest(deviceId: string): Promise<StoredReading> {
    const row = await this.history.latest(deviceId);
    if (row === undefined) throw new NotFoundError("Device", deviceId);
    if (row === null) throw new NotFoundError("Reading of device", deviceId);
    return toReading(row);
  }

  async explain(deviceId: string, from: Date | undefined, analyze: boolean) {
    await this.devices.get(deviceId);
    // The statement of a first page of the default size (+1, as `page` asks for).
    return this.history.explain({deviceId, from, limit: DEFAULT_HISTORY_LIMIT + 1}, analyze);
  }

  /**
   * Keyset pages walk the (device_id, recorded_at) index, so a page costs its size. A temperature
   * filter is different: a page of matches may have to read past any number of readings that do
   * not match, so with `minTemp` the range is bounded to MIN_TEMP_RANGE_DAYS (by default the last
   * ones before `to`, or before now): one tenant's filter cannot scan a device's whole history.
   */
  private toFilter(deviceId: string, query: ReadingHistoryQuery): HistoryFilter {
    let {from, to} = query;
    if (query.minTemp !== undefined) {
      to ??= new Date();
      from ??= new Date(to.getTime() - MIN_TEMP_RANGE_DAYS * DAY_MS);
      if (to.getTime() - from.getTime() > MIN_TEMP_RANGE_DAYS * DAY_MS) {
        throw new InvalidInputError(
          `With minTemp, from and to may be at most ${MIN_TEMP_RANGE_DAYS} days apart (the filter reads every reading of the range)`,
          [{field: "from"}, {field: "to"}]
        );
      }
    }
    if (from && to && from.getTime() >= to.getTime()) {
      throw new InvalidInputError("`from` must be before `to` (from is inclusive, to exclusive)", [{field: "from"}, {field: "to"}]);
    }
    return {
      deviceId,
      before: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
      from,
      to,
      minTemp: query.minTemp,
      limit: query.limit
    };
  }
}

/** The row without its cursor value. */
function toReading(row: StoredReading & {cursorAt: string}): StoredReading {
  const {id, deviceId, temperatureCelsius, humidity, batteryLevel, recordedAt, createdAt} = row;
  return {id, deviceId, temperatureCelsius, humidity, batteryLevel, recordedAt, createdAt};
}
