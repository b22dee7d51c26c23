import type pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {zoneFarFromLocalHour} from "../helpers/clock.js";
import {until} from "../helpers/wait.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {
  analyticsDb,
  closeDbs,
  countStatements,
  createDevice,
  dailyRows,
  expectedDay,
  postReadings,
  type ReadingRow,
  setTimezone,
  tenantDb,
  withDailyStatsTrigger
} from "../helpers/stats-fixtures.js";

const HOUR = 3_600_000;

/** Readings every `stepMinutes` in [startIso, endIso), temperatures from a deterministic sequence. */
function every(startIso: string, endIso: string, stepMinutes: number, offset = 0): ReadingRow[] {
  const rows: ReadingRow[] = [];
  for (let t = Date.parse(startIso), i = 0; t < Date.parse(endIso); t += stepMinutes * 60_000, i++) {
    rows.push({recordedAt: new Date(t), temperatureCelsius: 18 + ((i * 7 + offset) % 50) / 10});
  }
  return rows;
}

describe("stats: hourly from raw readings, daily stats refreshed after commit", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer();
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  it("buckets readings by local hour of a zone whose hours start off the UTC hour (+05:30 or +05:45)", async () => {
    // The clock is read once, and the zone chosen so that its local hour cannot turn over
    // between this reading and the server's (at least 7.5 minutes away).
    const now = Date.now();
    const {zone, offset, startMinute} = zoneFarFromLocalHour(new Date(now));
    const tenant = newTenant("hourly");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "HR-1");
    await setTimezone(tenant, zone);
    const shift = startMinute * 60_000;
    const currentLocalHour = Math.floor((now - shift) / HOUR) * HOUR + shift;
    const rows = every(new Date(currentLocalHour - 4 * HOUR - 20 * 60_000).toISOString(), new Date(now - 60_000).toISOString(), 10);
    expect(await postReadings(api, auth, device, rows)).toEqual({inserted: rows.length, duplicates: 0});

    const res = await api.get(`/api/v1/devices/${device}/stats/hourly?hours=3`).set(auth);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({deviceId: device, timezone: zone, hours: 3});
    const expectedStarts = [currentLocalHour - 2 * HOUR, currentLocalHour - HOUR, currentLocalHour].filter((start) =>
      rows.some((r) => +new Date(r.recordedAt) >= start && +new Date(r.recordedAt) < start + HOUR)
    );
    expect(expectedStarts.length).toBeGreaterThanOrEqual(2);
    expect(res.body.buckets.map((b: {start: string}) => Date.parse(b.start))).toEqual(expectedStarts);
    for (const bucket of res.body.buckets) {
      const start = Date.parse(bucket.start);
      const inHour = rows.filter((r) => +new Date(r.recordedAt) >= start && +new Date(r.recordedAt) < start + HOUR);
      const expected = expectedDay(inHour);
      expect(bucket).toMatchObject({
        readingCount: expected.readingCount,
        minTemperatureCelsius: expected.min,
        maxTemperatureCelsius: expected.max
      });
      expect(bucket.avgTemperatureCelsius).toBeCloseTo(expected.avg, 9);
      expect(bucket.localStart).toMatch(new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:00:00\\${offset}$`));
      expect(new Date(start).getUTCMinutes()).toBe(startMinute);
    }
    expect((await api.get(`/api/v1/devices/${device}/stats/hourly?hours=0`).set(auth)).status).toBe(400);
    expect((await api.get(`/api/v1/devices/${device}/stats/hourly?hours=169`).set(auth)).status).toBe(400);
    expect((await api.get(`/api/v1/devices/${device}/stats/hourly`).set(auth)).body.hours).toBe(24);
  });

  it("refreshes the touched day right after a write commits, in two statements whatever the day holds", async () => {
    const tenant = newTenant("daily");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "D-1");
    const batch = (rows: ReadingRow[]) =>
      api
        .post(`/api/v1/devices/${device}/readings/batch`)
        .set(auth)
        .send({readings: rows.map((r) => ({temperatureCelsius: r.temperatureCelsius, recordedAt: (r.recordedAt as Date).toISOString()}))});

    // The tenant's settings (raw retention) are read once per tenant and cached; warm them so
    // that what is counted is the steady state of a write.
    expect((await api.get(`/api/v1/devices/${device}/stats/daily?from=2026-03-01&to=2026-03-31`).set(auth)).status).toBe(200);
    const first = every("2026-03-10T00:00:00Z", "2026-03-10T06:00:00Z", 30);
    const onEmptyDay = await countStatements(() => batch(first));
    expect(onEmptyDay.result.status).toBe(200);
    expect(await dailyRows(tenant, device)).toMatchObject([
      {date: "2026-03-10", readingCount: 12, min: expectedDay(first).min, max: expectedDay(first).max}
    ]);

    // A second write is merged into what is there: the row covers both writes.
    const second = every("2026-03-10T12:00:00Z", "2026-03-10T14:00:00Z", 30, 3);
    const onFullDay = await countStatements(() => batch(second));
    expect(onFullDay.result.status).toBe(200);
    const [row] = await dailyRows(tenant, device);
    const expected = expectedDay([...first, ...second]);
    expect(row).toMatchObject({date: "2026-03-10", readingCount: expected.readingCount, min: expected.min, max: expected.max});
    expect(row!.avg).toBeCloseTo(expected.avg, 10);
    // The whole request: the ingest statement (which also totals the days it touched) and the
    // merge into analytics (which reads no readings back), on an empty day as on a full one. A
    // refresh that re-triggered itself, re-read the day, or worked per device or per reading
    // would issue more.
    for (const {statements} of [onEmptyDay, onFullDay]) {
      expect(statements).toHaveLength(2);
      expect(statements.filter((sql) => /temperature_readings/.test(sql))).toHaveLength(1);
      expect(statements.filter((sql) => /daily_stats/.test(sql))).toHaveLength(1);
    }

    const daily = await api.get(`/api/v1/devices/${device}/stats/daily?from=2026-03-01&to=2026-03-31`).set(auth);
    expect(daily.status).toBe(200);
    expect(daily.body).toHaveLength(1);
    expect(daily.body[0]).toMatchObject({deviceId: device, date: "2026-03-10", readingCount: expected.readingCount});
  });

  it("refreshes after the transaction that writes alert episodes commits, once", async () => {
    const tenant = newTenant("dailytx");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "DT-1");
    expect(
      (await api.post(`/api/v1/devices/${device}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 19})).status
    ).toBe(201);
    const rows = every("2026-03-10T00:00:00Z", "2026-03-10T06:00:00Z", 30);
    const {result, statements} = await countStatements(
      () =>
        api
          .post(`/api/v1/devices/${device}/readings/batch`)
          .set(auth)
          .send({
            readings: rows.map((r) => ({temperatureCelsius: r.temperatureCelsius, recordedAt: (r.recordedAt as Date).toISOString()}))
          }),
      {transactionControl: true}
    );
    expect(result.status).toBe(200);
    expect(result.body.alertsFired).toBeGreaterThan(0);
    // A reading crosses the rule: the write ran in a transaction, and the merge came after its COMMIT.
    const commit = statements.findIndex((sql) => /^commit/i.test(sql));
    const merges = statements.flatMap((sql, i) => (/daily_stats/.test(sql) ? [i] : []));
    expect(commit).toBeGreaterThan(0);
    expect(merges).toHaveLength(1);
    expect(merges[0]).toBeGreaterThan(commit);
    expect(await dailyRows(tenant, device)).toMatchObject([
      {date: "2026-03-10", readingCount: rows.length, min: expectedDay(rows).min, max: expectedDay(rows).max}
    ]);
  });

  it("merges concurrent writes to the same day without losing one", async () => {
    const tenant = newTenant("concurrent");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "C-1");
    const writes = Array.from({length: 20}, (_, w) =>
      every(`2026-03-12T${String(w).padStart(2, "0")}:00:00Z`, `2026-03-12T${String(w).padStart(2, "0")}:05:00Z`, 1, w)
    );
    await Promise.all(writes.map((rows) => postReadings(api, auth, device, rows)));
    const expected = expectedDay(writes.flat());
    const [row] = await dailyRows(tenant, device);
    expect(row).toMatchObject({date: "2026-03-12", readingCount: 100, min: expected.min, max: expected.max});
    expect(row!.avg).toBeCloseTo(expected.avg, 9);
  });

  it("coalesces the refreshes of concurrent writes: fewer merges than writes, every reading counted once, each write answered after its own", async () => {
    const tenant = newTenant("coalesce");
    const auth = await bearer(tenant);
    const devices = await Promise.all(Array.from({length: 4}, (_, d) => createDevice(api, auth, `CO-${d}`)));
    const writes = Array.from({length: 24}, (_, w) => ({
      device: devices[w % 4]!,
      rows: every(`2026-03-13T${String(w).padStart(2, "0")}:00:00Z`, `2026-03-13T${String(w).padStart(2, "0")}:10:00Z`, 2, w)
    }));
    const {statements} = await countStatements(() =>
      Promise.all(
        writes.map(async ({device, rows}) => {
          await postReadings(api, auth, device, rows);
          // When the write is answered, the refresh that holds its readings has run.
          const [row] = await dailyRows(tenant, device);
          expect(row!.readingCount).toBeGreaterThanOrEqual(rows.length);
        })
      )
    );
    // (The test's own dailyRows reads are counted too: only the merges are compared.)
    expect(statements.filter((sql) => /merge_daily_stats/.test(sql)).length).toBeLessThan(writes.length);
    for (const [d, device] of devices.entries()) {
      const mine = writes.filter((w) => w.device === device).flatMap((w) => w.rows);
      expect(await dailyRows(tenant, device), `device ${d}`).toMatchObject([
        {date: "2026-03-13", readingCount: mine.length, min: expectedDay(mine).min, max: expectedDay(mine).max}
      ]);
    }
  });

  /** A tenant of its own, with one device. */
  const tenantWithDevice = async (label: string) => {
    const tenant = newTenant(label);
    const auth = await bearer(tenant);
    return {tenant, auth, device: await createDevice(api, auth, `${label}-1`)};
  };

  /** Inserts the device's DailyStats row of `date` in the holder's open transaction: a merge of that day waits on it until the holder ends. */
  const holdDayRow = (holder: pg.PoolClient, tenant: string, device: string, date: string) =>
    holder.query(
      `insert into "daily_stats" ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius",
         "max_temperature_celsius", "reading_count") values ($1, $2, $3, 0, 0, 0, 0)`,
      [tenant, device, date]
    );

  it("coalesces the refreshes of concurrent writes of different tenants: fewer merges than tenants, each tenant's rows its own", async () => {
    const tenants: {tenant: string; auth: Awaited<ReturnType<typeof bearer>>; device: string}[] = [];
    for (let t = 0; t < 24; t++) {
      // One after the other: each tenant's first request creates its schema.
      const tenant = newTenant(`spread${t}`);
      const auth = await bearer(tenant);
      tenants.push({tenant, auth, device: await createDevice(api, auth, `SP-${t}`)});
    }
    const rows = (t: number) => every("2026-03-14T08:00:00Z", "2026-03-14T08:10:00Z", 5, t);
    // Coalescing needs refreshes that arrive while one runs, which a loaded machine may not time:
    // every tenant's day row is held, inserted and not committed, so each lane's first merge waits
    // on it while the other writes' refreshes queue behind it; then the rows are let go.
    const holder = await analyticsDb().connect();
    try {
      await holder.query("begin");
      for (const {tenant, device} of tenants) await holdDayRow(holder, tenant, device, "2026-03-14");
      const {statements} = await countStatements(async () => {
        const posts = Promise.all(tenants.map(({auth, device}, t) => postReadings(api, auth, device, rows(t))));
        await untilEveryTenantStored(tenants, rows(0).length);
        // The last refreshes are handed over right after their statement's answer reaches the app.
        await new Promise((resolve) => setTimeout(resolve, 200));
        await holder.query("rollback");
        return posts;
      });
      // One tenant's lone write is one merge when each tenant has a lane of its own.
      expect(statements.filter((sql) => /merge_daily_stats/.test(sql)).length).toBeLessThan(tenants.length);
    } finally {
      await holder.query("rollback").catch(() => undefined);
      holder.release();
    }
    for (const [t, {tenant, device}] of tenants.entries()) {
      expect(await dailyRows(tenant, device), `tenant ${t}`).toMatchObject([
        {date: "2026-03-14", readingCount: rows(t).length, min: expectedDay(rows(t)).min, max: expectedDay(rows(t)).max}
      ]);
    }
  });

  it("lets other tenants' refreshes past a merge stuck on a lock: they take the next lane, and answer with their stats", async () => {
    const [stuck, other] = [await tenantWithDevice("stuck"), await tenantWithDevice("past")];
    const rows = every("2026-03-15T08:00:00Z", "2026-03-15T08:10:00Z", 5);
    // The stuck tenant's day row is held (inserted, not committed): its merge waits on it.
    const holder = await analyticsDb().connect();
    try {
      await holder.query("begin");
      await holdDayRow(holder, stuck.tenant, stuck.device, "2026-03-15");
      const stuckPost = postReadings(api, stuck.auth, stuck.device, rows);
      await untilEveryTenantStored([stuck], rows.length);
      await new Promise((resolve) => setTimeout(resolve, 200)); // its merge has run longer than a lane waits for
      // The other tenant's post is answered once its own refresh is done, its stats already there
      // (behind the stuck merge, it would be answered after REFRESH_BUDGET_MS, its stats still to come).
      expect(await postReadings(api, other.auth, other.device, rows)).toEqual({inserted: rows.length, duplicates: 0});
      expect(await dailyRows(other.tenant, other.device)).toMatchObject([{date: "2026-03-15", readingCount: rows.length}]);
      await holder.query("rollback");
      await stuckPost;
    } finally {
      await holder.query("rollback").catch(() => undefined);
      holder.release();
    }
    expect(await dailyRows(stuck.tenant, stuck.device)).toMatchObject([{date: "2026-03-15", readingCount: rows.length}]);
  });

  it("keeps a tenant whose merge is stuck on a lock behind it, however often it writes meanwhile: other tenants still pass", async () => {
    const [stuck, other] = [await tenantWithDevice("stuckmany"), await tenantWithDevice("pastmany")];
    // Batches larger than a group are written beside the tenant's lane, so each hands its refresh over at once.
    const BATCH = 600;
    const batch = (k: number) => every(`2026-03-16T0${k}:00:00Z`, `2026-03-16T0${k}:59:59Z`, 0.1);
    const holder = await analyticsDb().connect();
    try {
      await holder.query("begin");
      await holdDayRow(holder, stuck.tenant, stuck.device, "2026-03-16");
      // More of the stuck tenant's refreshes than there are lanes, each after the last one's merge has stalled.
      const stuckPosts: Promise<unknown>[] = [];
      for (let k = 1; k <= 5; k++) {
        stuckPosts.push(postReadings(api, stuck.auth, stuck.device, batch(k)));
        await untilEveryTenantStored([stuck], k * BATCH);
        await new Promise((resolve) => setTimeout(resolve, 120));
      }
      // Answered once its own refresh is done, its stats there: no lane is left to the stuck tenant alone.
      const rows = every("2026-03-16T08:00:00Z", "2026-03-16T08:10:00Z", 5);
      expect(await postReadings(api, other.auth, other.device, rows)).toEqual({inserted: rows.length, duplicates: 0});
      expect(await dailyRows(other.tenant, other.device)).toMatchObject([{date: "2026-03-16", readingCount: rows.length}]);
      await holder.query("rollback");
      await Promise.all(stuckPosts);
    } finally {
      await holder.query("rollback").catch(() => undefined);
      holder.release();
    }
    expect(await dailyRows(stuck.tenant, stuck.device)).toMatchObject([{date: "2026-03-16", readingCount: 5 * BATCH}]);
  });

  /** Resolves once each tenant's readings are committed (their refreshes are then handed over or about to be). */
  const untilEveryTenantStored = (tenants: {tenant: string}[], perTenant: number) =>
    until("every tenant's readings committed", async () => {
      const counts = await Promise.all(
        tenants.map(
          async ({tenant}) =>
            (await tenantDb().query<{n: number}>(`select count(*)::int as "n" from ${quoteTenantSchema(tenant)}."temperature_readings"`))
              .rows[0]!.n
        )
      );
      return counts.every((n) => n >= perTenant);
    });

  it("refreshes daily stats right after readings are posted through the ingestion API", async () => {
    const tenant = newTenant("ingest");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "I-1");
    const batch = every("2026-03-10T08:00:00Z", "2026-03-10T10:00:00Z", 15);
    expect(await postReadings(api, auth, device, batch)).toEqual({inserted: 8, duplicates: 0});
    let daily = await api.get(`/api/v1/devices/${device}/stats/daily?from=2026-03-10&to=2026-03-10`).set(auth);
    expect(daily.body).toMatchObject([
      {date: "2026-03-10", readingCount: 8, minTemperatureCelsius: expectedDay(batch).min, maxTemperatureCelsius: expectedDay(batch).max}
    ]);

    const single = await api
      .post(`/api/v1/devices/${device}/readings`)
      .set(auth)
      .send({temperatureCelsius: 42.5, recordedAt: "2026-03-10T23:59:59Z"});
    expect(single.status).toBe(201);
    daily = await api.get(`/api/v1/devices/${device}/stats/daily?from=2026-03-10&to=2026-03-10`).set(auth);
    expect(daily.body).toMatchObject([{readingCount: 9, maxTemperatureCelsius: 42.5}]);

    // A retried (duplicate) post stores nothing and changes nothing.
    const [before] = await dailyRows(tenant, device);
    expect(
      (await api.post(`/api/v1/devices/${device}/readings`).set(auth).send({temperatureCelsius: 42.5, recordedAt: "2026-03-10T23:59:59Z"}))
        .status
    ).toBe(200);
    expect(await dailyRows(tenant, device)).toEqual([before]);
  });

  it("refreshes only the touched (device, day) pairs, one row per local day", async () => {
    const tenant = newTenant("pairs");
    const auth = await bearer(tenant);
    const [a, b] = [await createDevice(api, auth, "P-A"), await createDevice(api, auth, "P-B")];
    await setTimezone(tenant, "America/New_York");
    // Device b's readings are stored but their merge never runs (a test trigger swallows it).
    await withDailyStatsTrigger({tenant, deviceId: b, effect: "skip"}, () =>
      postReadings(api, auth, b, every("2026-03-11T00:00:00Z", "2026-03-11T02:00:00Z", 30))
    );
    expect(await dailyRows(tenant, b)).toEqual([]);
    // 03:00Z on March 12 is still March 11 in New York (UTC-4 after the March 8 change).
    await postReadings(api, auth, a, [
      {recordedAt: "2026-03-12T03:00:00Z", temperatureCelsius: 20},
      {recordedAt: "2026-03-12T05:00:00Z", temperatureCelsius: 22}
    ]);
    expect(await dailyRows(tenant, a)).toMatchObject([
      {date: "2026-03-11", readingCount: 1, avg: 20},
      {date: "2026-03-12", readingCount: 1, avg: 22}
    ]);
    // Device a's refresh did not touch b's days, though b has readings on March 11 too.
    expect(await dailyRows(tenant, b)).toEqual([]);
  });

  it("counts a 23-hour and a 25-hour local day right (Europe/Berlin DST changes)", async () => {
    const tenant = newTenant("dst");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "DST-1");
    await setTimezone(tenant, "Europe/Berlin");
    // Every 30 min from 2026-03-28 00:00 to 2026-03-31 00:00 local, and around the October change.
    const spring = every("2026-03-27T23:00:00Z", "2026-03-30T22:00:00Z", 30);
    const autumn = every("2026-10-23T22:00:00Z", "2026-10-26T23:00:00Z", 30);
    expect(await postReadings(api, auth, device, [...spring, ...autumn])).toEqual({inserted: spring.length + autumn.length, duplicates: 0});
    const rows = await dailyRows(tenant, device);
    expect(rows.map((r) => [r.date, r.readingCount])).toEqual([
      ["2026-03-28", 48],
      ["2026-03-29", 46], // 23 hours: 02:00-03:00 does not exist
      ["2026-03-30", 48],
      ["2026-10-24", 48],
      ["2026-10-25", 50], // 25 hours: 02:00-03:00 happens twice
      ["2026-10-26", 48]
    ]);
    const march29 = spring.filter(
      (r) => +new Date(r.recordedAt) >= Date.parse("2026-03-28T23:00:00Z") && +new Date(r.recordedAt) < Date.parse("2026-03-29T22:00:00Z")
    );
    expect(rows[1]).toMatchObject({min: expectedDay(march29).min, max: expectedDay(march29).max});
    expect(rows[1]!.avg).toBeCloseTo(expectedDay(march29).avg, 10);
  });

  it("never fails the write when the refresh fails: the readings stay committed", async () => {
    const tenant = newTenant("fail");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "F-1");
    // Analytics refuses the tenant's DailyStats writes (a test trigger): the merge after the commit fails.
    const res = await withDailyStatsTrigger({tenant, effect: "fail"}, () =>
      api.post(`/api/v1/devices/${device}/readings`).set(auth).send({temperatureCelsius: 21, recordedAt: "2026-03-10T10:00:00Z"})
    );
    expect(res.status).toBe(201);
    const history = await api.get(`/api/v1/devices/${device}/readings`).set(auth);
    expect(history.body.count).toBe(1);
    expect(await dailyRows(tenant, device)).toEqual([]);
  });

  it("answers daily stats by local date range, and 400/404 for bad input", async () => {
    const tenant = newTenant("range");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "R-1");
    await postReadings(api, auth, device, [
      {recordedAt: "2026-03-01T10:00:00Z", temperatureCelsius: 20},
      {recordedAt: "2026-03-02T10:00:00Z", temperatureCelsius: 21},
      {recordedAt: "2026-03-05T10:00:00Z", temperatureCelsius: 22}
    ]);
    const res = await api.get(`/api/v1/devices/${device}/stats/daily?from=2026-03-02&to=2026-03-05`).set(auth);
    expect(res.body.map((r: {date: string}) => r.date)).toEqual(["2026-03-02", "2026-03-05"]);
    expect((await api.get(`/api/v1/devices/${device}/stats/daily?from=2026-03-05&to=2026-03-02`).set(auth)).status).toBe(400);
    expect((await api.get(`/api/v1/devices/${device}/stats/daily?from=2026-02-30`).set(auth)).status).toBe(400);
    expect((await api.get(`/api/v1/devices/${device}/stats/daily?from=2024-01-01&to=2026-01-01`).set(auth)).status).toBe(400);
    const stranger = await bearer(newTenant("range_other"));
    expect((await api.get(`/api/v1/devices/${device}/stats/daily`).set(stranger)).status).toBe(404);
    expect((await api.get(`/api/v1/devices/${device}/stats/hourly`).set(stranger)).status).toBe(404);
    expect((await api.get(`/api/v1/devices/${device}/stats/weekly`).set(stranger)).status).toBe(404);
  });
});
