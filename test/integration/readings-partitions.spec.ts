import {setTimeout as sleep} from "node:timers/promises";
import {getQueueToken} from "@tsed/bullmq";
import {PlatformTest} from "@tsed/common";
import type {Queue} from "bullmq";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {PARTITION_MONTHS_AHEAD, ReadingPartitionsService} from "../../src/modules/readings/reading-partitions.service.js";
import {
  PARTITIONS_SCHEDULER_ID,
  READINGS_MAINTENANCE_JOBS,
  READINGS_MAINTENANCE_QUEUE
} from "../../src/modules/readings/readings-maintenance.queue.js";
import {addMonths, monthlyPartitionName, monthStart} from "../../src/platform/db/monthly-partitions.js";
import {countStatements} from "../helpers/sql-statements.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";
import {DailyStatsRecomputeService} from "../../src/modules/stats/daily-stats-recompute.service.js";
import {adminAuth, analyticsDb, closeDbs, createDevice, dailyRows, insertReadings, tenantDb} from "../helpers/stats-fixtures.js";

const DAY = 86_400_000;

interface Partition {
  name: string;
  bounds: string;
  rows: number;
}

/** The partitions of a tenant's readings table as Postgres describes them, oldest first, with their row counts. */
async function partitions(tenant: string): Promise<Partition[]> {
  const {rows} = await tenantDb().query<{name: string; bounds: string}>(
    `select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bounds
       from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = $1::regclass and c.relkind = 'r'`,
    [`"${tenant}"."temperature_readings"`]
  );
  const result: Partition[] = [];
  for (const row of rows) {
    const {rows: count} = await tenantDb().query<{n: number}>(`select count(*)::int as n from "${tenant}"."${row.name}"`);
    result.push({name: row.name, bounds: row.bounds, rows: count[0]!.n});
  }
  // `_older` (FROM MINVALUE) first, then the months by name (which sorts by date).
  return result.sort((a, b) => (a.name.endsWith("_older") ? -1 : b.name.endsWith("_older") ? 1 : a.name.localeCompare(b.name)));
}

const monthNames = (from: Date, count: number) =>
  Array.from({length: count}, (_, i) => monthlyPartitionName("temperature_readings", addMonths(from, i)));

describe("readings over time: monthly partitions and raw retention", () => {
  let api: Api;
  let service: ReadingPartitionsService;

  beforeAll(async () => {
    api = await startTestServer();
    service = PlatformTest.get<ReadingPartitionsService>(ReadingPartitionsService);
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  describe("partitions", () => {
    it("gives a new tenant's readings monthly partitions up to three months ahead, and one for everything older", async () => {
      const tenant = newTenant("parts");
      await createDevice(api, await bearer(tenant), "P-1");
      const current = monthStart(new Date());
      const parts = await partitions(tenant);
      // The month before the current one, the current one, three ahead; below them everything older.
      expect(parts.map((p) => p.name)).toEqual([
        "temperature_readings_older",
        ...monthNames(addMonths(current, -1), PARTITION_MONTHS_AHEAD + 2)
      ]);
      expect(parts[0]!.bounds).toMatch(/^FOR VALUES FROM \(MINVALUE\) TO \('/);
      expect(parts.at(-1)!.bounds).toContain(
        `TO ('${addMonths(current, PARTITION_MONTHS_AHEAD + 1)
          .toISOString()
          .slice(0, 10)}`
      );
      // The primary key (device_id, recorded_at) and the BRIN index, on every partition.
      const {rows: indexes} = await tenantDb().query<{n: number}>(
        `select count(*)::int as n from pg_index x join pg_inherits i on i.inhrelid = x.indrelid where i.inhparent = $1::regclass`,
        [`"${tenant}"."temperature_readings"`]
      );
      expect(indexes[0]!.n).toBe(2 * parts.length);
    });

    it("creates the months ahead as time passes, idempotently, and safely when two runs race", async () => {
      const tenant = newTenant("ahead");
      await createDevice(api, await bearer(tenant), "P-2");
      const before = (await partitions(tenant)).map((p) => p.name);
      expect((await service.maintain(tenant, null)).created).toEqual([]);

      // Five months later (the job did not run meanwhile): every missing month up to three ahead of then.
      const later = addMonths(monthStart(new Date()), 5);
      const first = await service.maintain(tenant, null, new Date(later.getTime() + 10 * DAY));
      expect(first.created).toEqual(monthNames(addMonths(monthStart(new Date()), PARTITION_MONTHS_AHEAD + 1), 5));
      expect((await service.maintain(tenant, null, new Date(later.getTime() + 10 * DAY))).created).toEqual([]);

      // Two runs at once, as two workers would (a retry racing a stalled job). Made to overlap: the
      // first is held at its ATTACH (a lock on the table) while it holds the tenant's run lock; the
      // second then finds that lock taken and stands aside; the first creates every month, once.
      const evenLater = new Date(addMonths(later, 4).getTime() + DAY);
      const holder = new pg.Client({connectionString: process.env.DATABASE_URL});
      await holder.connect();
      const runs: Promise<unknown>[] = [];
      let standing: unknown;
      try {
        await holder.query("begin");
        await holder.query(`lock table "${tenant}".temperature_readings in share update exclusive mode`);
        runs.push(service.maintain(tenant, null, evenLater));
        await until("the first run to wait for the table", async () => {
          const {rows} = await holder.query<{n: number}>(
            `select count(*)::int as n from pg_locks where relation = $1::regclass and not granted`,
            [`"${tenant}"."temperature_readings"`]
          );
          return rows[0]!.n > 0;
        });
        const secondRun = service.maintain(tenant, null, evenLater);
        runs.push(secondRun);
        // A second run that waits for the table instead of standing aside would wait as long as it is held.
        standing = await Promise.race([secondRun, sleep(3_000).then(() => "still waiting after 3 s: it did not stand aside")]);
      } finally {
        await holder.query("commit");
        await holder.end();
        await Promise.allSettled(runs);
      }
      expect(standing).toEqual({tenantId: tenant, status: "busy", created: [], dropped: []});
      expect(await runs[0]).toEqual({
        tenantId: tenant,
        status: "done",
        created: monthNames(addMonths(later, PARTITION_MONTHS_AHEAD + 1), 4),
        dropped: []
      });
      expect((await service.maintain(tenant, null, evenLater)).created).toEqual([]);
      const names = (await partitions(tenant)).map((p) => p.name);
      expect(new Set(names).size).toBe(names.length);
      expect(names).toEqual(expect.arrayContaining(before));
    });

    it("answers 400, never 500, for a reading no partition takes", async () => {
      const tenant = newTenant("nopart");
      const auth = await bearer(tenant);
      const device = await createDevice(api, auth, "P-3");
      // As if the current month had never been created (the maintenance job stopped for months, say).
      await tenantDb().query(
        `alter table "${tenant}"."temperature_readings" detach partition "${tenant}"."${monthlyPartitionName("temperature_readings", monthStart(new Date()))}"`
      );
      const res = await api
        .post(`/api/v1/devices/${device}/readings`)
        .set(auth)
        .send({temperatureCelsius: 21, recordedAt: new Date().toISOString()});
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/outside the months/);
    });

    it("is scheduled nightly with a cron job scheduler", async () => {
      const queue = PlatformTest.get<Queue>(getQueueToken(READINGS_MAINTENANCE_QUEUE));
      let scheduler = await queue.getJobScheduler(PARTITIONS_SCHEDULER_ID);
      for (let i = 0; !scheduler && i < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        scheduler = await queue.getJobScheduler(PARTITIONS_SCHEDULER_ID);
      }
      expect(scheduler).toMatchObject({
        name: READINGS_MAINTENANCE_JOBS.partitions,
        pattern: loadConfig().readingsMaintenanceCron,
        tz: "UTC"
      });
    });
  });

  describe("raw retention", () => {
    it("drops the months past the retention, and nothing else; a second run changes nothing; DailyStats and alerts stay", async () => {
      const tenant = newTenant("ret");
      const auth = await bearer(tenant);
      const device = await createDevice(api, auth, "R-1");
      const current = monthStart(new Date());
      // Readings in: the partition below the months (4 months ago), last month, this month, next month.
      const at = (month: number, day: number) => new Date(addMonths(current, month).getTime() + day * DAY + 3_600_000);
      const samples = [at(-4, 3), at(-4, 20), at(-1, 0), at(-1, 27), at(0, 0), at(0, 14), at(1, 2)];
      // Months ahead and months back: past what a route takes (the clock bounds), so written directly, with their DailyStats.
      await insertReadings(
        tenant,
        device,
        samples.map((recordedAt, i) => ({recordedAt, temperatureCelsius: 20 + i}))
      );
      await PlatformTest.get<DailyStatsRecomputeService>(DailyStatsRecomputeService).recomputeTenant(tenant);
      // An alert opened by a reading of a month about to be dropped (alerts no longer reference readings by key).
      const [oldest] = (
        await tenantDb().query<{id: string}>(`select id::text from "${tenant}".temperature_readings order by recorded_at limit 1`)
      ).rows;
      const rule = await api.post(`/api/v1/devices/${device}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 50});
      await tenantDb().query(
        `insert into "${tenant}".alerts (id, created_at, updated_at, rule_id, device_id, reading_id, temperature_celsius, fired_at, last_reading_at, peak_temperature_celsius)
         values (gen_random_uuid(), now(), now(), $1, $2, $3, 20, $4, $4, 20)`,
        [rule.body.id, device, oldest!.id, samples[0]]
      );
      const statsBefore = await dailyRows(tenant, device);
      expect(statsBefore).toHaveLength(samples.length);
      const before = await partitions(tenant);

      // Seen from the middle of next month with a 30-day retention: everything that ended before
      // the 16th of this month goes — the older partition and last month — this month stays whole.
      const now = new Date(addMonths(current, 1).getTime() + 15 * DAY);
      const {result: outcome, statements} = await countStatements(() => service.maintain(tenant, 30, now));
      expect(outcome.dropped).toEqual(["temperature_readings_older", monthlyPartitionName("temperature_readings", addMonths(current, -1))]);
      const after = await partitions(tenant);
      expect(after.map((p) => p.name)).toEqual(
        before
          .map((p) => p.name)
          .filter((name) => !outcome.dropped.includes(name))
          .concat(outcome.created)
      );
      // Every row of a kept partition is still there.
      for (const partition of after) expect(partition.rows).toBe(before.find((p) => p.name === partition.name)?.rows ?? 0);
      const {rows: left} = await tenantDb().query<{n: number}>(`select count(*)::int as n from "${tenant}".temperature_readings`);
      expect(left[0]!.n).toBe(3);
      // Dropped whole: the tables are gone from the catalog (not merely detached), and no DELETE ran
      // (a row-by-row delete leaves dead tuples and vacuum debt: docs say never).
      const {rows: leftovers} = await tenantDb().query(
        `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = any($2)`,
        [tenant, outcome.dropped]
      );
      expect(leftovers).toEqual([]);
      expect(statements.filter((sql) => /\bdelete\s+from\b/i.test(sql))).toEqual([]);
      expect(statements.filter((sql) => /^drop table\b/i.test(sql))).toHaveLength(2);

      const again = await service.maintain(tenant, 30, now);
      expect(again).toMatchObject({status: "done", created: [], dropped: []});
      expect((await partitions(tenant)).map((p) => p.name)).toEqual(after.map((p) => p.name));

      expect(await dailyRows(tenant, device)).toEqual(statsBefore);
      const alerts = await api.get(`/api/v1/devices/${device}/alerts`).set(auth);
      expect(alerts.status).toBe(200);
      expect(alerts.body).toEqual([expect.objectContaining({readingId: oldest!.id})]);
    });

    it("refuses readings past a shortened retention at once, but drops its months only after RETENTION_GRACE_DAYS", async () => {
      const tenant = newTenant("retgrace");
      const admin = await adminAuth(tenant);
      const device = await createDevice(api, await bearer(tenant), "RG-1");
      const current = monthStart(new Date());
      await insertReadings(tenant, device, [
        {recordedAt: new Date(addMonths(current, -4).getTime() + 3 * DAY), temperatureCelsius: 20},
        {recordedAt: new Date(addMonths(current, -1).getTime() + 2 * DAY), temperatureCelsius: 21}
      ]);
      const before = await partitions(tenant);

      const changedAt = Date.now();
      const shortened = await api.patch("/api/v1/admin/tenant").set(admin).send({rawRetentionDays: 3});
      expect(shortened.status).toBe(200);
      expect(shortened.body.rawRetentionDays).toBe(3);
      const effectiveAt = Date.parse(shortened.body.rawRetentionEffectiveAt);
      expect(Math.abs(effectiveAt - (changedAt + loadConfig().retentionGraceMs))).toBeLessThan(60_000);
      expect((await api.get("/api/v1/admin/tenant").set(admin)).body.rawRetentionEffectiveAt).toBe(shortened.body.rawRetentionEffectiveAt);
      // Refused at once.
      const old = await api
        .post(`/api/v1/devices/${device}/readings`)
        .set(await bearer(tenant))
        .send({temperatureCelsius: 21, recordedAt: new Date(Date.now() - 5 * DAY).toISOString()});
      expect(old.status).toBe(400);

      // The nightly runs within the grace drop nothing.
      for (const days of [0, 1, 6.9]) {
        const run = await service.maintainRegistered(tenant, new Date(changedAt + days * DAY));
        expect(run.dropped, `day ${days}`).toEqual([]);
      }
      expect((await partitions(tenant)).filter((p) => p.rows > 0)).toEqual(before.filter((p) => p.rows > 0));

      // Once the grace is over, the months past 3 days go.
      const after = await service.maintainRegistered(tenant, new Date(effectiveAt + 60_000));
      expect(after.dropped).toEqual(
        expect.arrayContaining(["temperature_readings_older", monthlyPartitionName("temperature_readings", addMonths(current, -1))])
      );
    });

    it("drops nothing when a shortened retention is set back within the grace (removed or lengthened)", async () => {
      for (const setBack of [null, 400]) {
        const tenant = newTenant("retback");
        const admin = await adminAuth(tenant);
        const device = await createDevice(api, await bearer(tenant), "RB-1");
        const current = monthStart(new Date());
        await insertReadings(tenant, device, [
          {recordedAt: new Date(addMonths(current, -4).getTime() + 3 * DAY), temperatureCelsius: 20},
          {recordedAt: new Date(addMonths(current, -1).getTime() + 2 * DAY), temperatureCelsius: 21}
        ]);
        expect(
          (await api.patch("/api/v1/admin/tenant").set(admin).send({rawRetentionDays: 3})).body.rawRetentionEffectiveAt
        ).not.toBeNull();
        // A nightly run comes (a day later) before the admin notices.
        expect((await service.maintainRegistered(tenant, new Date(Date.now() + DAY))).dropped).toEqual([]);
        const back = await api.patch("/api/v1/admin/tenant").set(admin).send({rawRetentionDays: setBack});
        expect(back.body).toMatchObject({rawRetentionDays: setBack});
        // Weeks later, the nightly run still has every reading: the 3 days never took effect for drops.
        const run = await service.maintainRegistered(tenant, new Date(Date.now() + 30 * DAY));
        expect(run.dropped, String(setBack)).toEqual([]);
        const {rows} = await tenantDb().query<{n: number}>(`select count(*)::int as n from "${tenant}".temperature_readings`);
        expect(rows[0]!.n, String(setBack)).toBe(2);
      }
    });

    it("finishes a drop an earlier run left half done (detach pending, or detached but not dropped)", async () => {
      const tenant = newTenant("retresume");
      await createDevice(api, await bearer(tenant), "R-2");
      const current = monthStart(new Date());
      const lastMonth = monthlyPartitionName("temperature_readings", addMonths(current, -1));
      // Cut off after DETACH: the older partition is a table of its own, not dropped.
      await tenantDb().query(`alter table "${tenant}".temperature_readings detach partition "${tenant}".temperature_readings_older`);
      const outcome = await service.maintain(tenant, 7, new Date(current.getTime() + 20 * DAY));
      expect(outcome.dropped.sort()).toEqual([lastMonth, "temperature_readings_older"].sort());
      const {rows} = await tenantDb().query(
        `select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname in ($2, 'temperature_readings_older')`,
        [tenant, lastMonth]
      );
      expect(rows).toHaveLength(0);
    });

    it("is a tenant setting admins change, within bounds; null keeps everything", async () => {
      const tenant = newTenant("retset");
      const admin = await adminAuth(tenant);
      expect((await api.get("/api/v1/admin/tenant").set(admin)).body).toMatchObject({id: tenant, timezone: "UTC", rawRetentionDays: null});
      const set = await api.patch("/api/v1/admin/tenant").set(admin).send({rawRetentionDays: 400});
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({timezone: "UTC", rawRetentionDays: 400});
      // Each field alone: the timezone leaves the retention as it is.
      expect((await api.patch("/api/v1/admin/tenant").set(admin).send({timezone: "Europe/Berlin"})).body).toMatchObject({
        timezone: "Europe/Berlin",
        rawRetentionDays: 400
      });
      const {rows} = await tenantDb().query(`select raw_retention_days from public.tenants where id = $1`, [tenant]);
      expect(rows).toEqual([{raw_retention_days: 400}]);
      for (const body of [
        {},
        {rawRetentionDays: 2},
        {rawRetentionDays: 36_501},
        {rawRetentionDays: 30.5},
        {rawRetentionDays: "30"},
        {rawRetentionDays: -1}
      ]) {
        const res = await api.patch("/api/v1/admin/tenant").set(admin).send(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
      }
      expect((await api.patch("/api/v1/admin/tenant").set(admin).send({rawRetentionDays: null})).body).toMatchObject({
        rawRetentionDays: null
      });
      expect(
        (
          await api
            .patch("/api/v1/admin/tenant")
            .set(await bearer(tenant))
            .send({rawRetentionDays: 30})
        ).status
      ).toBe(403);
    });

    it("refuses readings older than the retention with 400 naming each one, and stores nothing of such a batch", async () => {
      const tenant = newTenant("retingest");
      const auth = await bearer(tenant);
      const device = await createDevice(api, auth, "R-3");
      await api
        .patch("/api/v1/admin/tenant")
        .set(await adminAuth(tenant))
        .send({rawRetentionDays: 10});
      const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();

      const old = await api
        .post(`/api/v1/devices/${device}/readings`)
        .set(auth)
        .send({temperatureCelsius: 21, recordedAt: ago(11)});
      expect(old.status).toBe(400);
      expect(old.body.errors).toEqual([expect.objectContaining({instancePath: "/recordedAt", keyword: "rawRetention"})]);
      expect(
        (
          await api
            .post(`/api/v1/devices/${device}/readings`)
            .set(auth)
            .send({temperatureCelsius: 21, recordedAt: ago(9)})
        ).status
      ).toBe(201);

      const batch = await api
        .post(`/api/v1/devices/${device}/readings/batch`)
        .set(auth)
        .send({
          readings: [
            {temperatureCelsius: 21, recordedAt: ago(1)},
            {temperatureCelsius: 21, recordedAt: ago(12)},
            {temperatureCelsius: 21, recordedAt: ago(30)}
          ]
        });
      expect(batch.status).toBe(400);
      expect(batch.body.errors.map((e: {instancePath: string}) => e.instancePath)).toEqual([
        "/readings/1/recordedAt",
        "/readings/2/recordedAt"
      ]);
      const {rows} = await tenantDb().query<{n: number}>(`select count(*)::int as n from "${tenant}".temperature_readings`);
      expect(rows[0]!.n).toBe(1);

      // Lifting the retention takes effect at once on this instance.
      await api
        .patch("/api/v1/admin/tenant")
        .set(await adminAuth(tenant))
        .send({rawRetentionDays: null});
      expect(
        (
          await api
            .post(`/api/v1/devices/${device}/readings`)
            .set(auth)
            .send({temperatureCelsius: 21, recordedAt: ago(11)})
        ).status
      ).toBe(201);
    });

    it("says plainly in history, hourly and daily statistics when a range reaches past the retention", async () => {
      const tenant = newTenant("retsay");
      const auth = await bearer(tenant);
      const device = await createDevice(api, auth, "R-4");
      await insertReadings(tenant, device, [{recordedAt: new Date(Date.now() - 2 * 3_600_000), temperatureCelsius: 20}]);

      const none = await api.get(`/api/v1/devices/${device}/readings`).set(auth);
      expect(none.body.rawRetention).toEqual({days: null, keptSince: null, reachesPastRetention: false});
      expect((await api.get(`/api/v1/devices/${device}/stats/daily`).set(auth)).headers["raw-retention-days"]).toBeUndefined();

      await api
        .patch("/api/v1/admin/tenant")
        .set(await adminAuth(tenant))
        .send({rawRetentionDays: 3});
      const keptSince = Date.now() - 3 * DAY;

      const all = await api.get(`/api/v1/devices/${device}/readings`).set(auth);
      expect(all.body.rawRetention).toMatchObject({days: 3, reachesPastRetention: true});
      expect(Math.abs(Date.parse(all.body.rawRetention.keptSince) - keptSince)).toBeLessThan(60_000);
      const recent = await api.get(`/api/v1/devices/${device}/readings?from=${new Date(Date.now() - DAY).toISOString()}`).set(auth);
      expect(recent.body.rawRetention).toMatchObject({days: 3, reachesPastRetention: false});
      const older = await api.get(`/api/v1/devices/${device}/readings?from=${new Date(Date.now() - 4 * DAY).toISOString()}`).set(auth);
      expect(older.body.rawRetention.reachesPastRetention).toBe(true);

      expect((await api.get(`/api/v1/devices/${device}/stats/hourly?hours=24`).set(auth)).body.rawRetention).toMatchObject({
        days: 3,
        reachesPastRetention: false
      });
      expect((await api.get(`/api/v1/devices/${device}/stats/hourly?hours=168`).set(auth)).body.rawRetention).toMatchObject({
        days: 3,
        reachesPastRetention: true
      });

      const daily = await api.get(`/api/v1/devices/${device}/stats/daily`).set(auth); // the last 30 days
      expect(daily.status).toBe(200);
      expect(daily.headers).toMatchObject({"raw-retention-days": "3", "raw-retention-reaches-past": "true"});
      expect(Math.abs(Date.parse(daily.headers["raw-retention-kept-since"]!) - keptSince)).toBeLessThan(60_000);
      const today = new Date().toISOString().slice(0, 10);
      expect(
        (await api.get(`/api/v1/devices/${device}/stats/daily?from=${today}&to=${today}`).set(auth)).headers["raw-retention-reaches-past"]
      ).toBe("false");
    });

    it("refuses to recompute a day whose raw readings are past the retention (its DailyStats are kept as they are)", async () => {
      const tenant = newTenant("retagg");
      const admin = await adminAuth(tenant);
      await api.patch("/api/v1/admin/tenant").set(admin).send({rawRetentionDays: 3});
      const old = await api
        .post("/api/v1/admin/aggregations")
        .set(admin)
        .send({date: new Date(Date.now() - 5 * DAY).toISOString().slice(0, 10)});
      expect(old.status).toBe(400);
      expect(old.body.message).toMatch(/past the tenant's raw retention/);
      const {rows} = await analyticsDb().query(`select 1 from daily_stats where tenant_id = $1`, [tenant]);
      expect(rows).toEqual([]);
    });
  });
});
