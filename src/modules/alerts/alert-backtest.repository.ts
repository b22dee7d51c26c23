import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import type {EpisodeReading} from "./alert-episodes.js";

/*
 * What a backtest reads of a device's stored readings. The readings feature owns the table but
 * depends on alerts (it writes episodes), not the reverse: these two read-only statements live
 * here, reading the tenant's temperature_readings directly, through its (device_id, recorded_at)
 * index and only the partitions of the range.
 */

/** The device's readings recorded in [:from, :to), in recordedAt order, with only what the state machine reads. */
export const backtestReadingsSql = (
  schema: string
) => `select r."id"::text as "id", r."temperature_celsius" as "temperatureCelsius", r."recorded_at" as "recordedAt"
  from ${schema}."temperature_readings" r
 where r."device_id" = :deviceId::uuid and r."recorded_at" >= :from and r."recorded_at" < :to
 order by r."recorded_at"`;

/**
 * When the device's readings arrived (created_at) in [:arrivedFrom, :arrivedTo), in order, found
 * among those recorded in [:recordedFrom, :recordedTo): the index is on recorded_at, so the caller
 * bounds how far a reading's recordedAt may lie from its arrival.
 */
export const backtestArrivalsSql = (schema: string) => `select r."created_at" as "arrivedAt"
  from ${schema}."temperature_readings" r
 where r."device_id" = :deviceId::uuid and r."recorded_at" >= :recordedFrom and r."recorded_at" < :recordedTo
   and r."created_at" >= :arrivedFrom and r."created_at" < :arrivedTo
 order by r."created_at"`;

@Injectable()
export class AlertBacktestRepository {
  @Inject()
  private tenant!: TenantContext;

  readings(deviceId: string, from: Date, to: Date): Promise<EpisodeReading[]> {
    return queryRows(this.tenant.em, backtestReadingsSql(this.schema()), {deviceId, from, to});
  }

  async arrivals(deviceId: string, recorded: {from: Date; to: Date}, arrived: {from: Date; to: Date}): Promise<Date[]> {
    const rows = await queryRows<{arrivedAt: Date}>(this.tenant.em, backtestArrivalsSql(this.schema()), {
      deviceId,
      recordedFrom: recorded.from,
      recordedTo: recorded.to,
      arrivedFrom: arrived.from,
      arrivedTo: arrived.to
    });
    return rows.map((row) => row.arrivedAt);
  }

  private schema(): string {
    return quoteTenantSchema(this.tenant.tenantId);
  }
}
