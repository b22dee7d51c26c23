import {spawnSync} from "node:child_process";
import {PlatformTest} from "@tsed/common";
import pg from "pg";
import {afterAll, afterEach, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {Migration20261202000100_readings_partitioned as Conversion} from "../../src/migrations/tenant/Migration20261202000100_readings_partitioned.js";
import {tenantMigrations} from "../../src/migrations/index.js";
import {addMonths, monthlyPartitionName, monthStart} from "../../src/platform/db/monthly-partitions.js";
import {migrateTenantSchema} from "../../src/platform/tenancy/tenant-migrator.js";
import {TenantProvisionerService} from "../../src/platform/tenancy/tenant-provisioner.service.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {closeDbs, tenantDb} from "../helpers/stats-fixtures.js";
import {testAdminUrl} from "../helpers/test-databases.js";

/** The last tenant migration of the release before partitioning. */
const BEFORE_PARTITIONING = "Migration20261201100000_alert_rule_episode_state";
/** The conversion and every tenant migration listed after it: what migrating such a schema applies. */
const FROM_CONVERSION = tenantMigrations
  .map((migration) => migration.name)
  .slice(tenantMigrations.findIndex((migration) => migration.name === "Migration20261202000100_readings_partitioned"));
const ALARMS = "Migration20261206110000_alarms";
const ROOT = new URL("../..", import.meta.url).pathname;
const DAY = 86_400_000;

interface Digest {
  n: number;
  /** md5 of every column of every row, in id order. */
  md5: string;
}

const digestSql = (tenant: string, where = "true") =>
  `select count(*)::int as n, md5(coalesce(string_agg(concat_ws('|', id, device_id, temperature_celsius, humidity, battery_level, recorded_at, created_at), ',' order by id), '')) as md5
     from "${tenant}".temperature_readings where ${where}`;

async function digest(tenant: string, where = "true"): Promise<Digest> {
  const {rows} = await tenantDb().query<Digest>(digestSql(tenant, where));
  return rows[0]!;
}

/**
 * A tenant as the previous release left it — one unpartitioned readings table — with five
 * devices, readings every 6 hours over the last six months and an alert that references one of
 * them. Not registered: the servers of other spec files, booting meanwhile, migrate every
 * registered tenant of the shared database and would convert it under the test's feet.
 */
async function tenantBeforePartitioning(label: string): Promise<{tenant: string; devices: string[]}> {
  const tenant = newTenant(label);
  await migrateTenantSchema(loadConfig(), tenant, BEFORE_PARTITIONING);
  const db = tenantDb();
  await db.query(
    `insert into "${tenant}".users (id, created_at, updated_at, subject) values (gen_random_uuid(), now(), now(), 'conversion')`
  );
  const {rows: devices} = await db.query<{id: string}>(
    `insert into "${tenant}".devices (id, created_at, updated_at, serial_number, name, owner_id)
     select gen_random_uuid(), now(), now(), 'CONV-' || g, 'Sensor ' || g, (select id from "${tenant}".users) from generate_series(1, 5) g returning id`
  );
  const start = addMonths(monthStart(new Date()), -6);
  await db.query(
    `insert into "${tenant}".temperature_readings (device_id, temperature_celsius, humidity, battery_level, recorded_at)
     select d.id, round((18 + 8 * random())::numeric, 2), case when g % 3 = 0 then null else 40 + g % 20 end, 0.9, $1::timestamptz + g * interval '6 hours' + d.n * interval '1 minute'
       from generate_series(0, $2::int) g cross join (select id, row_number() over (order by id) as n from "${tenant}".devices) d
      where $1::timestamptz + g * interval '6 hours' < now() - interval '1 hour'
      order by g, d.n`,
    [start.toISOString(), Math.ceil((Date.now() - start.getTime()) / (6 * 3_600_000))]
  );
  const {rows: rules} = await db.query<{id: string}>(
    `insert into "${tenant}".alert_rules (id, created_at, updated_at, device_id, condition, threshold_celsius) values (gen_random_uuid(), now(), now(), $1, 'above', 25) returning id`,
    [devices[0]!.id]
  );
  await db.query(
    `insert into "${tenant}".alerts (id, created_at, updated_at, rule_id, device_id, reading_id, temperature_celsius, fired_at, last_reading_at, peak_temperature_celsius)
     select gen_random_uuid(), now(), now(), $1, r.device_id, r.id, r.temperature_celsius, r.recorded_at, r.recorded_at, r.temperature_celsius
       from "${tenant}".temperature_readings r where r.device_id = $2 order by r.recorded_at limit 1`,
    [rules[0]!.id, devices[0]!.id]
  );
  return {tenant, devices: devices.map((d) => d.id)};
}

/** Every reading sits in the partition of its month (or `_older` before the first month). */
async function expectEachInItsMonth(tenant: string) {
  const {rows} = await tenantDb().query<{partition: string; month: Date}>(
    `select tableoid::regclass::text as partition, date_trunc('month', recorded_at at time zone 'UTC') as month from "${tenant}".temperature_readings group by 1, 2`
  );
  for (const {partition, month} of rows) {
    const name = partition.replace(/^.*\./, "").replace(/"/g, "");
    if (name !== "temperature_readings_older")
      expect(name).toBe(monthlyPartitionName("temperature_readings", new Date(Date.UTC(month.getFullYear(), month.getMonth(), 1))));
  }
}

async function relkind(tenant: string): Promise<string> {
  const {rows} = await tenantDb().query<{kind: string}>(`select relkind::text as kind from pg_class where oid = $1::regclass`, [
    `"${tenant}"."temperature_readings"`
  ]);
  return rows[0]!.kind;
}

describe("conversion of an existing readings table into monthly partitions (Migration20261202000100)", () => {
  let api: Api;
  const defaults = {onlineAboveRows: Conversion.onlineAboveRows, batchIds: Conversion.batchIds};

  beforeAll(async () => {
    api = await startTestServer();
  });
  afterEach(() => {
    Object.assign(Conversion, defaults);
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  it("in the migration's own transaction (a small table): every row kept, in the partition of its month; the alert keeps its reading", async () => {
    const {tenant, devices} = await tenantBeforePartitioning("conv");
    const before = await digest(tenant);
    expect(before.n).toBeGreaterThan(3_000);
    const {rows: fk} = await tenantDb().query(
      `select 1 from pg_constraint where conname = 'alerts_reading_id_fkey' and connamespace = $1::regnamespace`,
      [tenant]
    );
    expect(fk).toHaveLength(1);
    const {rows: maxId} = await tenantDb().query<{id: string}>(`select max(id)::text as id from "${tenant}".temperature_readings`);

    expect(await migrateTenantSchema(loadConfig(), tenant)).toEqual(FROM_CONVERSION);

    expect(await relkind(tenant)).toBe("p");
    expect(await digest(tenant)).toEqual(before);
    await expectEachInItsMonth(tenant);
    // Six months back is the oldest month with readings: it and every month after it, three ahead, and `_older` below.
    const {rows: parts} = await tenantDb().query(`select 1 from pg_inherits where inhparent = $1::regclass`, [
      `"${tenant}"."temperature_readings"`
    ]);
    expect(parts).toHaveLength(1 + 7 + 3);
    const {rows: fkAfter} = await tenantDb().query(
      `select 1 from pg_constraint where conname = 'alerts_reading_id_fkey' and connamespace = $1::regnamespace`,
      [tenant]
    );
    expect(fkAfter).toHaveLength(0);
    const {rows: leftovers} = await tenantDb().query(
      `select relname from pg_class where relnamespace = $1::regnamespace and relname ~ '(partitioned|conversion|unpartitioned)'`,
      [tenant]
    );
    expect(leftovers).toEqual([]);

    // The application works on it: ids continue after the old ones, duplicates stay duplicates, history reads across months.
    const auth = await bearer(tenant);
    const created = await api
      .post(`/api/v1/devices/${devices[0]}/readings`)
      .set(auth)
      .send({temperatureCelsius: 21.5, recordedAt: new Date(Date.now() - 60_000).toISOString()});
    expect(created.status).toBe(201);
    expect(BigInt(created.body.reading.id)).toBeGreaterThan(BigInt(maxId[0]!.id));
    const {rows: first} = await tenantDb().query<{recorded_at: Date}>(
      `select recorded_at from "${tenant}".temperature_readings where device_id = $1 order by recorded_at limit 1`,
      [devices[1]]
    );
    const duplicate = await api
      .post(`/api/v1/devices/${devices[1]}/readings`)
      .set(auth)
      .send({temperatureCelsius: 99, recordedAt: first[0]!.recorded_at.toISOString()});
    expect(duplicate.status).toBe(200);
    expect(duplicate.body.duplicate).toBe(true);
    const page = await api
      .get(`/api/v1/devices/${devices[2]}/readings?limit=500&from=${addMonths(monthStart(new Date()), -3).toISOString()}`)
      .set(auth);
    expect(page.status).toBe(200);
    expect(page.body.count).toBeGreaterThan(300);
    const alerts = await api.get(`/api/v1/devices/${devices[0]}/alerts`).set(auth);
    expect(alerts.body).toEqual([expect.objectContaining({readingId: expect.any(String)})]);
  });

  it("online (a large table), while readings keep arriving through the API: every row kept, none twice, none refused", async () => {
    const {tenant, devices} = await tenantBeforePartitioning("convonline");
    // The API writing meanwhile is this release's, whose ingest statement reads the alarm columns;
    // in a real deploy it is the previous release's, which does not. Those columns first, then.
    await migrateTenantSchema(loadConfig(), tenant, {migrations: [ALARMS]});
    const before = await digest(tenant);
    const {rows: maxId} = await tenantDb().query<{id: string}>(`select max(id)::text as id from "${tenant}".temperature_readings`);
    Object.assign(Conversion, {onlineAboveRows: 0, batchIds: 100});

    // The API instances of the previous release keep ingesting meanwhile: their schema check is done.
    PlatformTest.get<TenantProvisionerService>(TenantProvisionerService).markReady([tenant]);
    const auth = await bearer(tenant);
    const conversion = {phase: "before" as "before" | "during" | "after"};
    let accepted = 0;
    let duringConversion = 0;
    const statuses = new Map<number, number>();
    const writer = (async () => {
      for (let i = 0, after = 0; conversion.phase !== "after" || after++ < 3; i++) {
        const readings = Array.from({length: 5}, (_, k) => ({
          temperatureCelsius: 20 + k,
          recordedAt: new Date(Date.now() - 2 * DAY + (i * 5 + k) * 1000).toISOString()
        }));
        const sentDuring = conversion.phase === "during";
        const res = await api.post(`/api/v1/devices/${devices[4]}/readings/batch`).set(auth).send({readings});
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) {
          accepted += res.body.inserted as number;
          if (sentDuring && conversion.phase === "during") duringConversion += res.body.inserted as number;
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    conversion.phase = "during";
    const applied = await migrateTenantSchema(loadConfig(), tenant);
    conversion.phase = "after";
    await writer;

    expect(applied).toEqual(FROM_CONVERSION.filter((name) => name !== ALARMS));
    expect([...statuses.keys()]).toEqual([200]);
    expect(duringConversion).toBeGreaterThan(0);
    expect(await relkind(tenant)).toBe("p");
    // The rows that were there: unchanged. The rows written meanwhile: each exactly once.
    expect(await digest(tenant, `id <= ${maxId[0]!.id}`)).toEqual(before);
    expect((await digest(tenant, `id > ${maxId[0]!.id}`)).n).toBe(accepted);
    const {rows: keys} = await tenantDb().query<{n: number; distinct: number}>(
      `select count(*)::int as n, count(distinct (device_id, recorded_at))::int as distinct from "${tenant}".temperature_readings`
    );
    expect(keys[0]!.n).toBe(keys[0]!.distinct);
    expect(keys[0]!.n).toBe(before.n + accepted);
    await expectEachInItsMonth(tenant);
  });

  it("resumes an online conversion that was cut off mid-copy", async () => {
    const {tenant} = await tenantBeforePartitioning("convresume");
    const before = await digest(tenant);
    Object.assign(Conversion, {onlineAboveRows: 0, batchIds: 100});
    // A run that dies after ten batches (1,000 ids): its table, its triggers and its progress stay in place.
    type Copy = (
      s: string,
      after: number,
      upTo: number,
      query: unknown,
      onBatch?: (batch: () => Promise<void>, to: number) => Promise<void>
    ) => Promise<void>;
    const proto = Conversion.prototype as unknown as {copy: Copy};
    const copy = proto.copy;
    proto.copy = function (this: unknown, s, after, upTo, query, onBatch) {
      let batches = 0;
      return copy.call(this, s, after, upTo, query, async (batch, to) => {
        if (++batches > 10) throw new Error("cut off");
        await onBatch!(batch, to);
      });
    };
    try {
      await expect(migrateTenantSchema(loadConfig(), tenant)).rejects.toThrow(/cut off/);
    } finally {
      proto.copy = copy;
    }
    expect(await relkind(tenant)).toBe("r");
    const {rows: progress} = await tenantDb().query<{done: string; high: string}>(
      `select done::text, high::text from "${tenant}".temperature_readings_conversion`
    );
    expect(Number(progress[0]!.done)).toBe(1_000);
    expect(Number(progress[0]!.high)).toBe(before.n);
    // While it is pending, a change to a reading is refused rather than silently lost.
    await expect(
      tenantDb().query(`delete from "${tenant}".temperature_readings where id = (select min(id) from "${tenant}".temperature_readings)`)
    ).rejects.toThrow(/being converted/);

    expect(await migrateTenantSchema(loadConfig(), tenant)).toEqual(FROM_CONVERSION);
    expect(await relkind(tenant)).toBe("p");
    expect(await digest(tenant)).toEqual(before);
  });

  it("`npm run migrate` converts every registered tenant", {timeout: 120_000}, async () => {
    // A database of its own: the servers of the other spec files migrate every registered tenant of
    // the shared one when they boot, and would convert these before the command gets to them.
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `${url.pathname}_migrate_cli`;
    // The administrator's URL: the command creates the databases, owned by the run's role.
    const env = {
      ...process.env,
      NODE_ENV: "test",
      DATABASE_URL: url.toString(),
      ANALYTICS_DATABASE_URL: `${url.toString()}_analytics`,
      DATABASE_ADMIN_URL: testAdminUrl()
    };
    const admin = tenantDb();
    const databases = [url.pathname.slice(1), `${url.pathname.slice(1)}_analytics`];
    for (const name of databases) await admin.query(`drop database if exists "${name}" with (force)`);
    const migrate = () => spawnSync("npm", ["run", "-s", "migrate"], {cwd: ROOT, env, encoding: "utf8", timeout: 60_000});
    try {
      expect(migrate().status).toBe(0); // creates the databases and the registry
      const config = {...loadConfig(), databaseUrl: url.toString()};
      const tenants = [newTenant("convcli"), newTenant("convcli")];
      const db = new pg.Client({connectionString: url.toString()});
      await db.connect();
      try {
        const before: Digest[] = [];
        for (const tenant of tenants) {
          await migrateTenantSchema(config, tenant, BEFORE_PARTITIONING);
          await db.query(`insert into public.tenants (id) values ($1)`, [tenant]);
          await db.query(
            `insert into "${tenant}".users (id, created_at, updated_at, subject) values (gen_random_uuid(), now(), now(), 'cli')`
          );
          await db.query(
            `insert into "${tenant}".devices (id, created_at, updated_at, serial_number, name, owner_id) select gen_random_uuid(), now(), now(), 'CLI-1', 'n', id from "${tenant}".users`
          );
          await db.query(
            `insert into "${tenant}".temperature_readings (device_id, temperature_celsius, recorded_at)
             select d.id, 20 + g % 7, now() - g * interval '1 hour' from "${tenant}".devices d cross join generate_series(1, 3000) g`
          );
          before.push((await db.query<Digest>(digestSql(tenant))).rows[0]!);
        }
        const run = migrate();
        expect(run.status, run.stderr).toBe(0);
        for (const [i, tenant] of tenants.entries()) {
          expect(run.stdout).toContain(`tenant ${tenant}: Migration20261202000100_readings_partitioned`);
          const {rows} = await db.query<{kind: string}>(`select relkind::text as kind from pg_class where oid = $1::regclass`, [
            `"${tenant}"."temperature_readings"`
          ]);
          expect(rows[0]!.kind).toBe("p");
          expect((await db.query<Digest>(digestSql(tenant))).rows[0]).toEqual(before[i]);
        }
        expect(migrate().stdout).toMatch(/2 tenant schema\(s\) checked/);
      } finally {
        await db.end();
      }
    } finally {
      for (const name of databases) await admin.query(`drop database if exists "${name}" with (force)`);
    }
  });
});
