import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * Drops the foreign key temperature_readings.device_id → devices. Postgres checked it with one
 * trigger call (an index probe and a row lock on the device) per inserted reading: half the cost
 * of a 1,000-reading INSERT. What it guarded is guarded otherwise:
 * - readings are only written by the ingestion statement, which inserts nothing unless the device
 *   exists and is active in the same statement (ReadingRepository.ingest);
 * - devices are never deleted (DELETE deactivates), so nothing can orphan a reading, and the
 *   cascade it declared never fired.
 * The readings table is also the one docs/scaling.md plans to partition by time and distribute by
 * device, where a foreign key to `devices` is in the way.
 */
export class Migration20261122020000_readings_without_device_fk extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`alter table ${s}."temperature_readings" drop constraint if exists "temperature_readings_device_id_fkey";`);
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(
      `alter table ${s}."temperature_readings" add constraint "temperature_readings_device_id_fkey" foreign key ("device_id") references ${s}."devices" ("id") on update cascade on delete cascade;`
    );
  }
}
