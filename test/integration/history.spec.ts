import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {adminAuth, closeDbs, countStatements, createDevice, insertReadings, type ReadingRow, tenantDb} from "../helpers/stats-fixtures.js";

interface Reading {
  id: string;
  deviceId: string;
  temperatureCelsius: number;
  recordedAt: string;
}

/** Every node of an EXPLAIN (FORMAT JSON) plan tree. */
function planNodes(plan: {Plan: PlanNode}[]): PlanNode[] {
  const walk = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(walk)];
  return plan.flatMap((entry) => walk(entry.Plan));
}
type PlanNode = {"Node Type": string; Plans?: PlanNode[]; [key: string]: unknown};

interface Page {
  data: Reading[];
  hasNextPage: boolean;
  nextCursor: string | null;
  count: number;
}

const T0 = Date.parse("2026-03-01T00:00:00Z");

/** n readings 30 s apart from T0, temperatures cycling through 0..99 tenths above 15 °C. */
function series(n: number): ReadingRow[] {
  return Array.from({length: n}, (_, i) => ({recordedAt: new Date(T0 + i * 30_000), temperatureCelsius: 15 + (i % 100) / 10}));
}

describe("reading history", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let deviceId: string;

  /** Follows nextCursor to the end; returns every page. */
  async function allPages(query: string, headers = auth, device = deviceId) {
    const pages: Page[] = [];
    let cursor: string | null = null;
    do {
      const res: {status: number; body: Page} = await api
        .get(`/api/v1/devices/${device}/readings?${query}${cursor ? `&cursor=${cursor}` : ""}`)
        .set(headers);
      expect(res.status).toBe(200);
      pages.push(res.body);
      cursor = res.body.nextCursor;
      expect(pages.length).toBeLessThan(1_000);
    } while (cursor);
    return pages;
  }

  async function idsInSql(where = "true", device = deviceId) {
    const {rows} = await tenantDb().query(
      `select "id" from ${quoteTenantSchema(tenant)}."temperature_readings" where "device_id" = $1 and ${where} order by "recorded_at" desc`,
      [device]
    );
    return rows.map((row) => String(row.id));
  }

  beforeAll(async () => {
    api = await startTestServer();
    tenant = newTenant("hist");
    auth = await bearer(tenant);
    deviceId = await createDevice(api, auth, "H-1");
    await insertReadings(tenant, deviceId, series(1_234));
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  it("returns every reading exactly once, newest first, across pages", async () => {
    const pages = await allPages("limit=100");
    expect(pages).toHaveLength(13);
    expect(pages.slice(0, -1).every((p) => p.count === 100 && p.hasNextPage && p.nextCursor)).toBe(true);
    expect(pages.at(-1)).toMatchObject({count: 34, hasNextPage: false, nextCursor: null});
    const ids = pages.flatMap((p) => p.data.map((r) => r.id));
    expect(ids).toEqual(await idsInSql());
    const times = pages.flatMap((p) => p.data.map((r) => Date.parse(r.recordedAt)));
    expect(times.every((t, i) => i === 0 || t < times[i - 1]!)).toBe(true);
    expect(pages[0]!.data[0]).toMatchObject({deviceId, temperatureCelsius: 15 + (1_233 % 100) / 10});
  });

  it("uses the default limit of 50 and stops exactly at the last row", async () => {
    const first = await api.get(`/api/v1/devices/${deviceId}/readings`).set(auth);
    expect(first.body.count).toBe(50);
    // 1,234 = 2 × 617 readings, 500 per page at most: 500, 500, 234 and no empty page after.
    const pages = await allPages("limit=500");
    expect(pages.map((p) => p.count)).toEqual([500, 500, 234]);
    const device = await createDevice(api, auth, "H-EXACT");
    await insertReadings(tenant, device, series(6));
    const exact = await allPages("limit=6", auth, device);
    expect(exact).toHaveLength(1);
    expect(exact[0]).toMatchObject({count: 6, hasNextPage: false, nextCursor: null});
  });

  it("neither skips nor repeats readings that differ by microseconds", async () => {
    const device = await createDevice(api, auth, "H-MICRO");
    const burst = Array.from({length: 7}, (_, i) => ({recordedAt: `2026-03-01T12:00:00.00000${i}Z`, temperatureCelsius: 20 + i}));
    await insertReadings(tenant, device, burst);
    const pages = await allPages("limit=2", auth, device);
    expect(pages.flatMap((p) => p.data.map((r) => r.temperatureCelsius))).toEqual([26, 25, 24, 23, 22, 21, 20]);
  });

  it("filters by from (inclusive), to (exclusive) and minTemp, across pages", async () => {
    const from = new Date(T0 + 100 * 30_000).toISOString();
    const to = new Date(T0 + 700 * 30_000).toISOString();
    const pages = await allPages(`limit=37&from=${from}&to=${to}&minTemp=19.5`);
    const ids = pages.flatMap((p) => p.data.map((r) => r.id));
    const expected = await idsInSql(`"recorded_at" >= '${from}' and "recorded_at" < '${to}' and "temperature_celsius" >= 19.5`);
    expect(expected.length).toBeGreaterThan(37);
    expect(ids).toEqual(expected);
    const first = pages[0]!.data;
    expect(first.every((r) => r.temperatureCelsius >= 19.5)).toBe(true);
    const all = pages.flatMap((p) => p.data);
    expect(Date.parse(all.at(-1)!.recordedAt)).toBeGreaterThanOrEqual(Date.parse(from));
    expect(all.every((r) => Date.parse(r.recordedAt) < Date.parse(to))).toBe(true);
    // `from` is inclusive: the reading exactly at `from` is there when it passes minTemp.
    const exactly = await api
      .get(`/api/v1/devices/${deviceId}/readings?from=${from}&to=${new Date(T0 + 101 * 30_000).toISOString()}`)
      .set(auth);
    expect(exactly.body.data.map((r: Reading) => r.recordedAt)).toEqual([from]);
  });

  it.each([
    ["a cursor that is not base64 JSON", "cursor=not-a-cursor"],
    ["a cursor with a forged payload", `cursor=${Buffer.from(JSON.stringify({v: 1, t: "'; drop table x; --"})).toString("base64url")}`],
    ["a cursor with characters outside base64url", "cursor=abc%24def"],
    ["an empty range", "from=2026-03-02T00:00:00Z&to=2026-03-02T00:00:00Z"],
    ["a reversed range", "from=2026-03-03T00:00:00Z&to=2026-03-02T00:00:00Z"],
    ["a timestamp without offset", "from=2026-03-02T00:00:00"],
    ["a limit of 0", "limit=0"],
    ["a limit above 500", "limit=501"],
    ["a non-numeric minTemp", "minTemp=warm"],
    ["minTemp over more than 31 days", "minTemp=20&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"],
    ["minTemp from a day more than 31 days ago up to now", "minTemp=20&from=2026-03-01T00:00:00Z"]
  ])("answers 400 for %s", async (_label, query) => {
    const res = await api.get(`/api/v1/devices/${deviceId}/readings?${query}`).set(auth);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({status: 400, name: "BAD_REQUEST"});
  });

  it("reads minTemp over the last 31 days when no range is given: a filter never scans a whole history", async () => {
    const device = await createDevice(api, auth, "H-MINTEMP");
    const now = Date.now();
    await insertReadings(tenant, device, [
      {recordedAt: new Date(now - 40 * 86_400_000), temperatureCelsius: 30},
      {recordedAt: new Date(now - 30 * 86_400_000), temperatureCelsius: 31},
      {recordedAt: new Date(now - 60_000), temperatureCelsius: 32},
      {recordedAt: new Date(now - 30_000), temperatureCelsius: 10}
    ]);
    const res = await api.get(`/api/v1/devices/${device}/readings?minTemp=25`).set(auth);
    expect(res.status).toBe(200);
    expect(res.body.data.map((r: Reading) => r.temperatureCelsius)).toEqual([32, 31]);
    // An older stretch is there to read with its own range of at most 31 days.
    const older = await api
      .get(
        `/api/v1/devices/${device}/readings?minTemp=25&from=${new Date(now - 45 * 86_400_000).toISOString()}&to=${new Date(now - 35 * 86_400_000).toISOString()}`
      )
      .set(auth);
    expect(older.body.data.map((r: Reading) => r.temperatureCelsius)).toEqual([30]);
  });

  it("answers the latest reading, and 404 when there is none or the device is another tenant's", async () => {
    const latest = await api.get(`/api/v1/devices/${deviceId}/readings/latest`).set(auth);
    expect(latest.status).toBe(200);
    expect(latest.body).toMatchObject({deviceId, recordedAt: new Date(T0 + 1_233 * 30_000).toISOString()});

    const empty = await createDevice(api, auth, "H-EMPTY");
    expect((await api.get(`/api/v1/devices/${empty}/readings/latest`).set(auth)).status).toBe(404);
    expect((await api.get(`/api/v1/devices/${empty}/readings`).set(auth)).body).toEqual({
      data: [],
      hasNextPage: false,
      nextCursor: null,
      count: 0,
      rawRetention: {days: null, keptSince: null, reachesPastRetention: false}
    });

    const stranger = await bearer(newTenant("hist_other"));
    expect((await api.get(`/api/v1/devices/${deviceId}/readings`).set(stranger)).status).toBe(404);
    expect((await api.get(`/api/v1/devices/${deviceId}/readings/latest`).set(stranger)).status).toBe(404);
  });

  it("answers latest in one statement with the device check, and reaches older months only when the recent ones hold nothing", async () => {
    const onData = (statements: string[]) => statements.filter((sql) => /"(temperature_readings|devices)"/.test(sql));
    const now = Date.now();
    const recent = await createDevice(api, auth, "H-LATEST-NOW");
    await insertReadings(tenant, recent, [
      {recordedAt: new Date(now - 120_000), temperatureCelsius: 20},
      {recordedAt: new Date(now - 60_000), temperatureCelsius: 21}
    ]);
    const fresh = await countStatements(() => api.get(`/api/v1/devices/${recent}/readings/latest`).set(auth));
    expect(fresh.result.status).toBe(200);
    expect(fresh.result.body).toMatchObject({deviceId: recent, temperatureCelsius: 21, recordedAt: new Date(now - 60_000).toISOString()});
    expect(onData(fresh.statements)).toHaveLength(1);

    // Only readings a year old: the recent window is empty, the older months answer.
    const old = await createDevice(api, auth, "H-LATEST-OLD");
    await insertReadings(tenant, old, [{recordedAt: new Date(now - 365 * 86_400_000), temperatureCelsius: 5}]);
    const past = await countStatements(() => api.get(`/api/v1/devices/${old}/readings/latest`).set(auth));
    expect(past.result.body).toMatchObject({deviceId: old, temperatureCelsius: 5});
    expect(onData(past.statements)).toHaveLength(2);

    // The device check and the reading's absence are told apart, as before.
    const unknown = "00000000-0000-4000-8000-000000000000";
    const missing = await api.get(`/api/v1/devices/${unknown}/readings/latest`).set(auth);
    expect(missing.status).toBe(404);
    expect(missing.body.message).toBe(`Device "${unknown}" not found`);
    const empty = await createDevice(api, auth, "H-LATEST-EMPTY");
    const none = await api.get(`/api/v1/devices/${empty}/readings/latest`).set(auth);
    expect(none.status).toBe(404);
    expect(none.body.message).toBe(`Reading of device "${empty}" not found`);
  });

  it("issues the same number of SQL statements whatever the page size (no N+1)", async () => {
    await api.get(`/api/v1/devices/${deviceId}/readings?limit=1`).set(auth);
    const small = await countStatements(() => api.get(`/api/v1/devices/${deviceId}/readings?limit=5`).set(auth));
    const large = await countStatements(() => api.get(`/api/v1/devices/${deviceId}/readings?limit=500`).set(auth));
    expect(small.result.body.count).toBe(5);
    expect(large.result.body.count).toBe(500);
    // Statements on the request's data only: a cache refill (the caller's user row lives seconds, the
    // tenant's settings half a minute) may land in either request on a loaded machine.
    const onData = (statements: string[]) => statements.filter((sql) => /"(temperature_readings|devices)"/.test(sql));
    // The device check and the page. These readings are months older than the page's recent window
    // (the month of now and the one before), so the page reads that window and then the rest: 3.
    expect(onData(small.statements)).toHaveLength(3);
    expect(onData(large.statements)).toHaveLength(3);

    for (let i = 0; i < 12; i++) await createDevice(api, auth, `H-LIST-${i}`);
    const fewDevices = await countStatements(() => api.get("/api/v1/devices?pageSize=2").set(auth));
    const manyDevices = await countStatements(() => api.get("/api/v1/devices?pageSize=15").set(auth));
    expect(fewDevices.result.body.items).toHaveLength(2);
    expect(manyDevices.result.body.items).toHaveLength(15);
    expect(fewDevices.result.body).toHaveProperty("total");
    expect(onData(manyDevices.statements).length).toBe(onData(fewDevices.statements).length);
  });

  it("plans page 1 over the two newest months only, and reads older months only when the page needs them", async () => {
    const recentDevice = await createDevice(api, auth, "H-RECENT");
    const now = Date.now();
    // Three recent readings, then 60 from months before the recent window (in the partition below the monthly ones).
    const recent = [1, 2, 3].map((i) => ({recordedAt: new Date(now - i * 60_000), temperatureCelsius: 20 + i}));
    await insertReadings(tenant, recentDevice, [...recent, ...series(60)]);
    const expected = await idsInSql("true", recentDevice);

    const firstPage = await api.get(`/api/v1/devices/${recentDevice}/readings?limit=10`).set(auth);
    expect(firstPage.status).toBe(200);
    expect(firstPage.body.data.map((r: Reading) => r.id)).toEqual(expected.slice(0, 10));
    const pages = await allPages("limit=7", auth, recentDevice);
    expect(pages.flatMap((page) => page.data.map((r) => r.id))).toEqual(expected);

    const thisMonth = new Date(Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1));
    const partition = (month: Date) => `temperature_readings_${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, "0")}`;
    const lastMonth = new Date(Date.UTC(thisMonth.getUTCFullYear(), thisMonth.getUTCMonth() - 1, 1));
    const nextMonth = new Date(Date.UTC(thisMonth.getUTCFullYear(), thisMonth.getUTCMonth() + 1, 1));
    const plan = await api.get(`/api/v1/admin/explain/readings?deviceId=${recentDevice}`).set(await adminAuth(tenant));
    expect(plan.status).toBe(200);
    const scanned = planNodes(plan.body.plan)
      .map((node) => node["Relation Name"])
      .filter((name): name is string => typeof name === "string");
    // The months created ahead and every older partition are pruned when the statement is planned.
    expect(scanned).toContain(partition(thisMonth));
    expect(new Set(scanned).size).toBeLessThanOrEqual(2);
    expect(scanned.every((name) => name === partition(thisMonth) || name === partition(lastMonth))).toBe(true);
    expect(scanned).not.toContain(partition(nextMonth));
    expect(scanned).not.toContain("temperature_readings_older");
  });

  it("shows admins the plan of the history query: an index scan, no sequential scan", async () => {
    // A device that reports now: page 1's first statement reads the newest months backwards through their primary keys.
    const liveDevice = await createDevice(api, auth, "H-LIVE");
    const now = Date.now();
    await insertReadings(
      tenant,
      liveDevice,
      Array.from({length: 2_000}, (_, i) => ({recordedAt: new Date(now - (i + 1) * 30_000), temperatureCelsius: 20}))
    );
    await tenantDb().query(`analyze ${quoteTenantSchema(tenant)}."temperature_readings"`);
    const admin = await adminAuth(tenant);
    const res = await api.get(`/api/v1/admin/explain/readings?deviceId=${liveDevice}&from=2026-03-01T02:00:00Z`).set(admin);
    expect(res.status).toBe(200);
    const nodes = planNodes(res.body.plan);
    const indexScans = nodes.filter((n) => n["Node Type"] === "Index Scan");
    expect(indexScans.length).toBeGreaterThan(0);
    // Every month's partition is read backwards through its primary key (device_id, recorded_at).
    expect(indexScans.every((n) => String(n["Index Name"]).endsWith("_pkey") && n["Scan Direction"] === "Backward")).toBe(true);
    expect(nodes.map((n) => n["Node Type"])).not.toContain("Seq Scan");
    expect(nodes.map((n) => n["Node Type"])).not.toContain("Sort");
    expect(res.body.query).toContain(liveDevice);

    const analyzed = await api.get(`/api/v1/admin/explain/readings?deviceId=${liveDevice}&analyze=true`).set(admin);
    expect(JSON.stringify(analyzed.body.plan)).toContain("Actual Rows");

    expect((await api.get(`/api/v1/admin/explain/readings?deviceId=${deviceId}`).set(auth)).status).toBe(403);
    expect((await api.get(`/api/v1/admin/explain/readings?deviceId=not-a-uuid`).set(admin)).status).toBe(400);
  });
});
