import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * The nightly aggregation reads one local day of all of a tenant's devices: a range of
 * recorded_at across devices, which the (device_id, recorded_at) unique index cannot serve
 * without one index probe per device (and, since devices report in turn, a heap page per reading).
 * Readings arrive roughly in time order, so a BRIN index on recorded_at (a few pages for millions
 * of rows, almost free on insert) narrows the scan to the day's block ranges as the table grows.
 */
export class Migration20261122010000_readings_recorded_at_brin extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(
      `create index if not exists "temperature_readings_recorded_at_brin" on ${s}."temperature_readings" using brin ("recorded_at") with (autosummarize = on);`
    );
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`drop index if exists ${s}."temperature_readings_recorded_at_brin";`);
  }
}
