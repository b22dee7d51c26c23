/**
 * npm run seed -- --tenant building_a [--days 7]
 * Demo data for a tenant, so a newcomer sees real dashboards at once: a few devices with
 * locations, alert rules, a week of readings every 30 s (a daily curve plus noise, and a server
 * room that overheats one afternoon), the alert episodes that produced, and the daily stats.
 * Idempotent: running it again adds nothing twice.
 */
import {parseArgs} from "node:util";
import {inject, logger} from "@tsed/di";
import {PlatformExpress} from "@tsed/platform-express";
import type {MikroORM} from "@mikro-orm/postgresql";
import {MikroOrmRegistry} from "@tsed/mikro-orm";
import {buildConfiguration} from "../../tsed.config.js";
import {env} from "../config/env.js";
import {DailyStatsRefresher} from "../modules/stats/daily-stats-refresher.service.js";
import {Server} from "../server.js";
import {queryRows} from "../platform/db/sql.js";
import {isValidTenantId, quoteTenantSchema} from "../platform/tenancy/tenant-id.js";
import {TenantProvisioner} from "../platform/tenancy/tenant-provisioner.service.js";

const {values} = parseArgs({options: {tenant: {type: "string"}, days: {type: "string", default: "7"}}});
if (!values.tenant || !isValidTenantId(values.tenant)) {
  console.error("usage: npm run seed -- --tenant <tenant_id> [--days 7]");
  process.exit(2);
}
const tenant = values.tenant;
const days = Math.min(Math.max(Number(values.days) || 7, 1), 31);

const DEVICES = [
  {serial: "DEMO-LOBBY", name: "Lobby", location: "Ground floor, entrance", base: 21, swing: 1.5, rule: {condition: "below", threshold: 17}},
  {serial: "DEMO-OFFICE-2", name: "Open office", location: "Floor 2, east wing", base: 22, swing: 2, rule: {condition: "above", threshold: 27}},
  {serial: "DEMO-SERVER", name: "Server room", location: "Basement, rack row B", base: 24, swing: 1, rule: {condition: "above", threshold: 30}},
  {serial: "DEMO-COLD", name: "Cold storage", location: "Loading dock", base: 4, swing: 0.8, rule: {condition: "above", threshold: 8}},
  {serial: "DEMO-ROOF", name: "Roof terrace", location: "Roof", base: 12, swing: 6, rule: null},
  {serial: "DEMO-LAB", name: "Lab", location: "Floor 3, room 301", base: 20, swing: 1, rule: {condition: "above", threshold: 25}}
];

const settings = {...env(), runWorkers: false};
const platform = await PlatformExpress.bootstrap(Server, {...buildConfiguration(settings), httpPort: false, httpsPort: false, mount: {}, swagger: [], logger: {level: "warn"}});
await platform.listen(false);
try {
  await inject(TenantProvisioner).ensure(tenant);
  const orm = inject(MikroOrmRegistry).get("default") as MikroORM;
  const em = orm.em.fork({schema: tenant});
  const s = quoteTenantSchema(tenant);

  const [owner] = await queryRows<{id: string}>(
    em,
    `insert into ${s}.users (id, created_at, updated_at, subject, display_name) values (gen_random_uuid(), now(), now(), 'seed', 'Demo owner')
     on conflict (subject) do update set updated_at = ${s}.users.updated_at returning id`,
    []
  );
  const end = new Date(Math.floor(Date.now() / 30_000) * 30_000);
  const start = new Date(end.getTime() - days * 86_400_000);
  let readings = 0;
  for (const device of DEVICES) {
    const [row] = await queryRows<{id: string}>(
      em,
      `insert into ${s}.devices (id, created_at, updated_at, serial_number, name, location, is_active, owner_id)
       values (gen_random_uuid(), now(), now(), ?, ?, ?, true, ?)
       on conflict (serial_number) do update set updated_at = ${s}.devices.updated_at returning id`,
      [device.serial, device.name, device.location, owner!.id]
    );
    const deviceId = row!.id;
    // A daily sine (coldest at 05:00 UTC) plus noise; the server room overheats for two hours on day 2.
    const inserted = await queryRows<{n: number}>(
      em,
      `with series as (
         select ts from generate_series(?::timestamptz, ?::timestamptz, interval '30 seconds') as ts
       ), ins as (
         insert into ${s}.temperature_readings (device_id, temperature_celsius, humidity, battery_level, recorded_at)
         select ?::uuid,
                round((? + ? * sin(2 * pi() * (extract(epoch from ts) / 86400 - 11.0 / 24)) + (random() - 0.5) * 0.4
                  + case when ? and ts >= ?::timestamptz + interval '1 day 14 hours' and ts < ?::timestamptz + interval '1 day 16 hours' then 9 else 0 end)::numeric, 2)::float8,
                round((45 + 10 * random())::numeric, 1)::float8,
                round(greatest(0.05, 1 - extract(epoch from ts - ?::timestamptz) / (86400 * 90))::numeric, 3)::float8,
                ts
         from series
         on conflict (device_id, recorded_at) do nothing
         returning 1
       ) select count(*)::int as n from ins`,
      [start.toISOString(), end.toISOString(), deviceId, device.base, device.swing, device.serial === "DEMO-SERVER", start.toISOString(), start.toISOString(), start.toISOString()]
    );
    readings += inserted[0]!.n;
    if (device.rule) {
      await queryRows(
        em,
        `insert into ${s}.alert_rules (id, created_at, updated_at, device_id, condition, threshold_celsius, is_enabled)
         select gen_random_uuid(), now(), now(), ?, ?, ?, true
         where not exists (select 1 from ${s}.alert_rules where device_id = ?)`,
        [deviceId, device.rule.condition, device.rule.threshold, deviceId]
      );
    }
    if (device.serial === "DEMO-SERVER") {
      // The overheating afternoon as one resolved episode (what ingestion would have recorded).
      await queryRows(
        em,
        `insert into ${s}.alerts (id, created_at, updated_at, rule_id, device_id, reading_id, temperature_celsius, fired_at, last_reading_at, peak_temperature_celsius, reading_count, resolved_at)
         select gen_random_uuid(), now(), now(), r.id, r.device_id, first.id, first.temperature_celsius, first.recorded_at, last.recorded_at, agg.peak, agg.n,
                (select min(recorded_at) from ${s}.temperature_readings t where t.device_id = r.device_id and t.recorded_at > last.recorded_at)
         from ${s}.alert_rules r
         cross join lateral (select max(temperature_celsius) as peak, count(*)::int as n, min(recorded_at) as first_at, max(recorded_at) as last_at
                             from ${s}.temperature_readings t where t.device_id = r.device_id and t.temperature_celsius > r.threshold_celsius) agg
         join ${s}.temperature_readings first on first.device_id = r.device_id and first.recorded_at = agg.first_at
         join ${s}.temperature_readings last on last.device_id = r.device_id and last.recorded_at = agg.last_at
         where r.device_id = ? and agg.n > 0 and not exists (select 1 from ${s}.alerts a where a.rule_id = r.id)`,
        [deviceId]
      );
    }
  }

  const refresher = inject(DailyStatsRefresher);
  let stats = 0;
  for (let day = 0; day <= days; day++) {
    const date = new Date(start.getTime() + day * 86_400_000).toISOString().slice(0, 10);
    stats += (await refresher.recomputeDay(tenant, date)).statsWritten;
  }
  console.log(`seeded tenant ${tenant}: ${DEVICES.length} devices, ${readings} new readings (${days} days every 30 s), ${stats} daily stats rows`);
  console.log(`try: TOKEN=$(npm run -s token -- --tenant ${tenant} --role admin); curl -H "Authorization: Bearer $TOKEN" localhost:${settings.port}/api/v1/devices`);
} catch (error) {
  logger().error({event: "SEED_FAILED", error_message: (error as Error).message});
  console.error("seed failed:", error);
  process.exitCode = 1;
} finally {
  await platform.stop();
}
