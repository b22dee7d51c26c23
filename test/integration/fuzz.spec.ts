import fc from "fast-check";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {MAX_RAW_RETENTION_DAYS, MIN_RAW_RETENTION_DAYS} from "../../src/common/raw-retention.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {untilStreamHeaders} from "../helpers/stream-headers.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

/**
 * Bad input at volume, against every documented route: generated path ids, query strings and
 * bodies. Never a 5xx, a rejected request (4xx) never leaves a row behind, and every route also
 * gets requests it must accept — so a route that answers 404 or 400 to everything fails here
 * instead of passing as "robust".
 *
 * To cover a new route, add a row to ROUTES: its `METHOD /path` as the OpenAPI document spells
 * it, a generator of requests the route must accept (`valid`), and `fresh` when the route uses up
 * what it names (a DELETE, a deactivation), so each of its runs gets a fixture of its own. The
 * first test fails for a documented route that has no row.
 */

/** Ids a request may name. Shared ones live for the whole file; `fresh` ones are made per run. */
interface Fixtures {
  deviceId: string;
  ruleId: string;
  alertId: string;
  userId: string;
  jobId: string;
  /** A key of the run's `deviceId` (the fresh one when both are fresh). */
  keyId: string;
  /** The secret of a key of the shared device: what `Authorization: Device …` routes send. */
  deviceKey: string;
  webhookId: string;
  /** An event of the tenant (a webhook test event). */
  eventId: string;
  silenceId: string;
}

interface RequestParts {
  /** Path parameters by name (`{deviceId}` → `deviceId`). */
  params: Partial<Record<string, string>>;
  query: Record<string, string>;
  /** Absent: the request has no body. */
  body?: unknown;
}

interface RouteGenerator {
  /** `METHOD /path/{param}`, exactly as the OpenAPI document lists it. */
  route: string;
  /** Requests this route must answer with 2xx, given the run's fixtures. */
  valid: (fixtures: Fixtures) => fc.Arbitrary<RequestParts>;
  /** Fixtures the route uses up or changes for good: made afresh for each of its runs, in this order. */
  fresh?: (keyof Fixtures)[];
  /** Who calls: a user's bearer token (default), or the shared device with its key. */
  caller?: "device";
  /** A live stream (text/event-stream), which never ends: its status and headers are the answer. */
  stream?: true;
  /** After each run: undo what would stop later runs from succeeding (a per-tenant limit). */
  after?: (db: pg.Client, shared: Fixtures, tenant: string) => Promise<void>;
}

/** Runs per route: the first VALID_SHARE of them valid requests, the rest junk. */
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS_PER_ROUTE ?? 70);
const VALID_SHARE = 0.4;
/** A route must answer 2xx to at least this share of all its runs (valid and junk together). */
const MIN_2XX_SHARE = 0.35;

const TABLES = ["users", "devices", "temperature_readings", "alert_rules", "alerts"];
const DAY_MS = 86_400_000;

// ---- generators of valid parts ----------------------------------------------------------------

let serials = 0;
/** Serial numbers never repeat (a repeat is a legitimate 409), shrunk or not. */
const serialNumber = fc.nat().map((n) => `FZ-${++serials}-${n}`);
const displayName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/);
const location = fc.option(fc.stringMatching(/^[A-Za-z0-9 ,.-]{0,200}$/), {nil: null});
const temperature = fc.double({min: -273.15, max: 1000, noNaN: true});
/** Instants the API accepts: from 2000 up to a minute ago (future skew is a 400). */
const pastInstant = fc.integer({min: Date.UTC(2000, 0, 1), max: Date.now() - 60_000}).map((ms) => new Date(ms).toISOString());
/** Calendar days from 2000 up to two days ago (today and later may be "in the future" somewhere). */
const pastDay = fc
  .integer({min: Date.UTC(2000, 0, 1) / DAY_MS, max: Math.floor(Date.now() / DAY_MS) - 2})
  .map((day) => new Date(day * DAY_MS).toISOString().slice(0, 10));
/** `from` strictly before `to` (the history's range is half-open: from = to is a 400). */
const instantRange = fc
  .tuple(fc.integer({min: Date.UTC(2000, 0, 1), max: Date.now() - 60_000}), fc.integer({min: 1, max: 30 * DAY_MS}))
  .map(([from, length]) => ({from: new Date(from).toISOString(), to: new Date(from + length).toISOString()}));
const bool = fc.constantFrom("true", "false");
/**
 * A valid raw retention that keeps every reading the generators send (from 2000 on, under 10,000
 * days ago), or none: a shorter one would turn later valid posts into 400s.
 */
const retentionKeepingAll = fc.oneof(fc.constant(null), fc.integer({min: 10_000, max: MAX_RAW_RETENTION_DAYS}));
const reading = fc.record(
  {
    temperatureCelsius: temperature,
    humidity: fc.option(fc.double({min: 0, max: 100, noNaN: true}), {nil: null}),
    batteryLevel: fc.option(fc.double({min: 0, max: 1, noNaN: true}), {nil: null}),
    recordedAt: pastInstant
  },
  {requiredKeys: ["temperatureCelsius", "recordedAt"]}
);
const ruleBody = fc.record(
  {condition: fc.constantFrom("above", "below"), thresholdCelsius: temperature, isEnabled: fc.boolean()},
  {requiredKeys: ["condition", "thresholdCelsius"]}
);
/** Query parameters present or not: `fc.option` per name, undefined ones dropped. */
const query = (shape: Record<string, fc.Arbitrary<string>>) =>
  fc
    .record(Object.fromEntries(Object.entries(shape).map(([name, value]) => [name, fc.option(value, {nil: undefined})])))
    .map((q) => Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as Record<string, string>);
const none = fc.constant<RequestParts>({params: {}, query: {}});
const on = (
  params: Partial<Record<string, string>>,
  rest: {query?: fc.Arbitrary<Record<string, string>>; body?: fc.Arbitrary<unknown>} = {}
): fc.Arbitrary<RequestParts> =>
  fc
    .record({query: rest.query ?? fc.constant({}), body: rest.body ?? fc.constant(undefined)})
    .map(({query: q, body}) => (body === undefined ? {params, query: q} : {params, query: q, body}));

/**
 * What generators are given instead of real ids: each run puts its fixtures in their place, so
 * a generated request (and a shrunk counterexample) stays a plain value.
 */
const PLACEHOLDERS: Fixtures = {
  deviceId: "<deviceId>",
  ruleId: "<ruleId>",
  alertId: "<alertId>",
  userId: "<userId>",
  jobId: "<jobId>",
  keyId: "<keyId>",
  deviceKey: "<deviceKey>",
  webhookId: "<webhookId>",
  eventId: "<eventId>",
  silenceId: "<silenceId>"
};
const PLACEHOLDER_NAMES = new Map(Object.entries(PLACEHOLDERS).map(([name, value]) => [value, name as keyof Fixtures]));

const ROUTES: RouteGenerator[] = [
  {route: "GET /api/v1/me", valid: () => none},
  {route: "GET /api/v1/admin/users", valid: () => on({}, {query: query({withDeleted: bool})})},
  {route: "DELETE /api/v1/admin/users/{userId}", valid: (f) => on({userId: f.userId}), fresh: ["userId"]},
  {
    route: "POST /api/v1/devices",
    valid: () => on({}, {body: fc.record({serialNumber, name: displayName, location}, {requiredKeys: ["serialNumber"]})})
  },
  {
    route: "GET /api/v1/devices",
    valid: () =>
      on({}, {query: query({page: fc.integer({min: 1, max: 5}).map(String), pageSize: fc.integer({min: 1, max: 100}).map(String)})})
  },
  {route: "GET /api/v1/devices/{deviceId}", valid: (f) => on({deviceId: f.deviceId})},
  {
    route: "PATCH /api/v1/devices/{deviceId}",
    valid: (f) => on({deviceId: f.deviceId}, {body: fc.record({name: displayName, location, isActive: fc.boolean()}, {requiredKeys: []})}),
    fresh: ["deviceId"]
  },
  {route: "DELETE /api/v1/devices/{deviceId}", valid: (f) => on({deviceId: f.deviceId}), fresh: ["deviceId"]},
  // A device holds at most 20 rules: each run gets a device of its own.
  {route: "POST /api/v1/devices/{deviceId}/alert-rules", valid: (f) => on({deviceId: f.deviceId}, {body: ruleBody}), fresh: ["deviceId"]},
  {route: "GET /api/v1/devices/{deviceId}/alert-rules", valid: (f) => on({deviceId: f.deviceId})},
  {
    route: "POST /api/v1/devices/{deviceId}/alert-rules/backtest",
    valid: (f) =>
      on(
        {deviceId: f.deviceId},
        {
          body: fc
            .tuple(
              fc.oneof(
                fc.record(
                  {
                    kind: fc.constant("threshold"),
                    condition: fc.constantFrom("above", "below"),
                    thresholdCelsius: temperature,
                    forSeconds: fc.integer({min: 0, max: 86_400}),
                    clearDeltaCelsius: fc.double({min: 0, max: 100, noNaN: true}),
                    severity: fc.constantFrom("warning", "critical")
                  },
                  {requiredKeys: ["condition", "thresholdCelsius"]}
                ),
                fc.record({kind: fc.constant("no_data"), silenceSeconds: fc.integer({min: 60, max: 604_800})})
              ),
              instantRange
            )
            .map(([rule, range]) => ({...rule, ...range}))
        }
      )
  },
  {
    route: "PATCH /api/v1/alert-rules/{ruleId}",
    valid: (f) =>
      on(
        {ruleId: f.ruleId},
        {
          body: fc.record(
            {condition: fc.constantFrom("above", "below"), thresholdCelsius: temperature, isEnabled: fc.boolean()},
            {requiredKeys: []}
          )
        }
      ),
    fresh: ["ruleId"]
  },
  {route: "DELETE /api/v1/alert-rules/{ruleId}", valid: (f) => on({ruleId: f.ruleId}), fresh: ["ruleId"]},
  {
    route: "GET /api/v1/devices/{deviceId}/alerts",
    valid: (f) => on({deviceId: f.deviceId}, {query: query({acknowledged: bool, open: bool})})
  },
  {
    route: "GET /api/v1/alerts",
    valid: () =>
      on(
        {},
        {
          query: query({
            open: bool,
            acknowledged: bool,
            severity: fc.constantFrom("warning", "critical"),
            page: fc.integer({min: 1, max: 5}).map(String),
            pageSize: fc.integer({min: 1, max: 100}).map(String)
          })
        }
      )
  },
  // Acknowledging again keeps the first acknowledgement and answers 200: the shared alert does.
  {
    route: "POST /api/v1/alerts/{alertId}/acknowledge",
    valid: (f) =>
      on({alertId: f.alertId}, {body: fc.record({comment: fc.option(fc.string({maxLength: 500}), {nil: null})}, {requiredKeys: []})})
  },
  {
    route: "GET /api/v1/devices/{deviceId}/stats/daily",
    valid: (f) =>
      on(
        {deviceId: f.deviceId},
        {
          query: fc
            .option(fc.tuple(pastDay, fc.integer({min: 0, max: 366})), {nil: undefined})
            .map((range): Record<string, string> =>
              range ? {from: range[0], to: new Date(Date.parse(range[0]) + range[1] * DAY_MS).toISOString().slice(0, 10)} : {}
            )
        }
      )
  },
  {route: "GET /api/v1/devices/{deviceId}/stats/weekly", valid: (f) => on({deviceId: f.deviceId})},
  {
    route: "GET /api/v1/devices/{deviceId}/stats/hourly",
    valid: (f) => on({deviceId: f.deviceId}, {query: query({hours: fc.integer({min: 1, max: 168}).map(String)})})
  },
  {route: "POST /api/v1/admin/aggregations", valid: () => on({}, {body: fc.record({date: pastDay}, {requiredKeys: []})})},
  {route: "GET /api/v1/admin/aggregations/{jobId}", valid: (f) => on({jobId: f.jobId})},
  {route: "POST /api/v1/devices/{deviceId}/readings", valid: (f) => on({deviceId: f.deviceId}, {body: reading})},
  {route: "POST /api/v1/devices/{deviceId}/keys", valid: (f) => on({deviceId: f.deviceId}), fresh: ["deviceId"]},
  {route: "GET /api/v1/devices/{deviceId}/keys", valid: (f) => on({deviceId: f.deviceId})},
  {
    route: "DELETE /api/v1/devices/{deviceId}/keys/{keyId}",
    valid: (f) => on({deviceId: f.deviceId, keyId: f.keyId}),
    fresh: ["deviceId", "keyId"]
  },
  {
    route: "POST /api/v1/device/readings",
    caller: "device",
    valid: () =>
      on(
        {},
        {
          body: fc.oneof(
            reading,
            fc.record({readings: fc.array(reading, {minLength: 1, maxLength: 20})}),
            fc.array(reading, {minLength: 1, maxLength: 20})
          )
        }
      )
  },
  {
    route: "GET /api/v1/devices/{deviceId}/readings",
    valid: (f) =>
      on(
        {deviceId: f.deviceId},
        {
          query: fc
            .tuple(
              query({limit: fc.integer({min: 1, max: 500}).map(String), minTemp: temperature.map(String)}),
              fc.option(instantRange, {nil: undefined})
            )
            .map(([q, range]) => (range ? {...q, ...range} : q))
        }
      )
  },
  {
    route: "POST /api/v1/devices/{deviceId}/readings/batch",
    valid: (f) => on({deviceId: f.deviceId}, {body: fc.record({readings: fc.array(reading, {minLength: 1, maxLength: 20})})})
  },
  {
    route: "GET /api/v1/readings/export",
    valid: (f) =>
      on(
        {},
        {
          query: fc
            .tuple(instantRange, query({format: fc.constantFrom("csv", "ndjson")}), fc.boolean())
            .map(([range, q, oneDevice]) => ({...range, ...q, ...(oneDevice ? {deviceId: f.deviceId} : {})}))
        }
      )
  },
  {route: "GET /api/v1/devices/{deviceId}/readings/latest", valid: (f) => on({deviceId: f.deviceId})},
  {
    route: "GET /api/v1/admin/explain/readings",
    valid: (f) =>
      fc.record({from: fc.option(pastInstant, {nil: undefined}), analyze: fc.option(bool, {nil: undefined})}).map((q) => ({
        params: {},
        query: {deviceId: f.deviceId, ...Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined))}
      }))
  },
  {route: "GET /api/v1/admin/tenant", valid: () => none},
  {
    route: "PATCH /api/v1/admin/tenant",
    valid: () =>
      on(
        {},
        {
          body: fc
            .record(
              {
                timezone: fc.constantFrom(
                  "UTC",
                  "Europe/Berlin",
                  "America/New_York",
                  "Asia/Kolkata",
                  "Pacific/Kiritimati",
                  "Australia/Lord_Howe"
                ),
                rawRetentionDays: retentionKeepingAll
              },
              {requiredKeys: []}
            )
            .filter((body) => Object.keys(body).length > 0)
        }
      )
  },
  {
    route: "POST /api/v1/admin/webhooks",
    // Literal public addresses: no DNS needed, and allowed with WEBHOOK_ALLOW_PRIVATE off.
    valid: () =>
      on(
        {},
        {
          body: fc.record(
            {
              url: fc.constantFrom("https://8.8.8.8/hook", "https://[2606:4700:4700::1111]:8443/x?y=1"),
              eventTypes: fc.subarray(["alert.*", "alert.fired", "alert.resolved", "alert.acknowledged"], {minLength: 1}),
              description: fc.option(fc.string({maxLength: 500}), {nil: null})
            },
            {requiredKeys: ["url"]}
          )
        }
      ),
    // At most 20 endpoints per tenant: each run removes what it made.
    after: async (db, shared, tenant) => {
      await db.query(`delete from "${tenant}"."webhook_endpoints" where id <> $1`, [shared.webhookId]);
    }
  },
  {route: "GET /api/v1/admin/webhooks", valid: () => none},
  {route: "GET /api/v1/admin/webhooks/{id}", valid: (f) => on({id: f.webhookId})},
  {
    route: "PATCH /api/v1/admin/webhooks/{id}",
    valid: (f) =>
      on(
        {id: f.webhookId},
        {
          body: fc.record(
            {
              description: fc.option(fc.string({maxLength: 500}), {nil: null}),
              eventTypes: fc.constantFrom(["alert.*"], ["alert.fired", "alert.reminder"]),
              isEnabled: fc.constant(true)
            },
            {requiredKeys: []}
          )
        }
      )
  },
  {route: "DELETE /api/v1/admin/webhooks/{id}", valid: (f) => on({id: f.webhookId}), fresh: ["webhookId"]},
  {route: "POST /api/v1/admin/webhooks/{id}/rotate-secret", valid: (f) => on({id: f.webhookId})},
  {route: "POST /api/v1/admin/webhooks/{id}/test", valid: (f) => on({id: f.webhookId})},
  {
    route: "GET /api/v1/admin/webhooks/{id}/deliveries",
    valid: (f) =>
      on(
        {id: f.webhookId},
        {
          query: query({
            status: fc.constantFrom("pending", "succeeded", "failed", "suppressed"),
            page: fc.integer({min: 1, max: 3}).map(String)
          })
        }
      )
  },
  {route: "POST /api/v1/admin/webhooks/{id}/deliveries/{eventId}/replay", valid: (f) => on({id: f.webhookId, eventId: f.eventId})},
  {
    route: "POST /api/v1/silences",
    // The whole tenant (the caller is an admin): a body cannot name the run's fixtures.
    valid: () =>
      on(
        {},
        {
          body: fc
            .record({
              startsIn: fc.integer({min: -3_600_000, max: 86_400_000}),
              lasts: fc.integer({min: 3_700_000, max: 6 * DAY_MS}),
              comment: fc.string({minLength: 1, maxLength: 500}).filter((c) => c.trim() !== "")
            })
            .map(({startsIn, lasts, comment}) => ({
              startsAt: new Date(Date.now() + startsIn).toISOString(),
              endsAt: new Date(Date.now() + startsIn + lasts).toISOString(),
              comment
            }))
        }
      )
  },
  {route: "GET /api/v1/silences", valid: () => on({}, {query: query({active: bool, page: fc.integer({min: 1, max: 3}).map(String)})})},
  {route: "DELETE /api/v1/silences/{id}", valid: (f) => on({id: f.silenceId})},
  {
    route: "GET /api/v1/stream",
    stream: true,
    valid: (f) =>
      on({}, {query: query({deviceId: fc.constant(f.deviceId), types: fc.constantFrom("alert.*", "alert.fired,reading.created")})})
  },
  {route: "POST /api/v1/stream/tokens", valid: () => none},
  {route: "GET /health/live", valid: () => none},
  {route: "GET /health/ready", valid: () => none},
  {route: "GET /metrics", valid: () => none}
];

// ---- junk ---------------------------------------------------------------------------------------

const junkId = fc.oneof(
  fc.uuid(),
  fc.string({maxLength: 40}),
  fc.constantFrom("0", "-1", "null", "undefined", "%00", "..%2F..%2Fetc", "1e309", "' or 1=1 --", "00000000-0000-0000-0000-000000000000")
);
const scalar = fc.oneof(
  fc.string({maxLength: 30}),
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom("", "true", "false", "null", "2026-13-45", "2026-03-28T10:30:00Z", "NaN", "-Infinity", "9".repeat(40))
);
const junkBody = fc.oneof(
  fc.jsonValue({maxDepth: 3}),
  fc.record(
    {
      serialNumber: scalar,
      name: fc.oneof(scalar, fc.constant(null)),
      temperatureCelsius: fc.oneof(fc.double(), scalar, fc.constant(null)),
      humidity: fc.oneof(fc.double(), scalar),
      batteryLevel: fc.oneof(fc.double(), scalar),
      recordedAt: fc.oneof(
        scalar,
        fc.date({noInvalidDate: true}).map((d) => d.toISOString())
      ),
      condition: fc.oneof(fc.constantFrom("above", "below", "ABOVE", "equal"), scalar),
      thresholdCelsius: fc.oneof(fc.double(), scalar),
      timezone: fc.oneof(fc.constantFrom("Europe/Berlin", "Mars/Olympus", "UTC"), scalar),
      rawRetentionDays: fc.oneof(
        retentionKeepingAll,
        fc.integer({min: -1, max: MIN_RAW_RETENTION_DAYS - 1}),
        fc.integer({min: MAX_RAW_RETENTION_DAYS + 1}),
        fc.double({noInteger: true}),
        scalar
      ),
      readings: fc.oneof(fc.array(fc.jsonValue({maxDepth: 2}), {maxLength: 5}), scalar)
    },
    {requiredKeys: []}
  )
);
/** One part of a valid request spoiled: a path id, the query (declared names and stray ones) or the body. */
const spoil = fc.record({
  part: fc.constantFrom("path", "query", "body"),
  pick: fc.nat(),
  id: junkId,
  values: fc.array(fc.option(scalar, {nil: undefined}), {minLength: 6, maxLength: 6}),
  stray: fc.dictionary(fc.string({maxLength: 8}), scalar, {maxKeys: 3}),
  body: junkBody
});

interface Operation {
  method: "get" | "post" | "patch" | "delete" | "put";
  path: string;
  query: string[];
  hasBody: boolean;
}

describe("fuzz: documented routes never answer 5xx nor half-write, and accept what is valid", () => {
  let api: Api;
  let db: pg.Client;
  let analytics: pg.Client;
  let auth: Record<string, string>;
  const operations = new Map<string, Operation>();
  const shared = {} as Fixtures;
  const tenant = newTenant("fuzz");
  const summary: Record<string, {runs: number; statuses: Record<number, number>}> = {};

  /** Setup must work: a fixture that failed would turn every later run into a 404. */
  const created = (res: {status: number; body: {id?: string; jobId?: string}}, status: number, what: string): string => {
    if (res.status !== status) throw new Error(`fixture ${what}: ${res.status} ${JSON.stringify(res.body)}`);
    return (res.body.id ?? res.body.jobId)!;
  };
  const makeDevice = async () =>
    created(
      await api
        .post("/api/v1/devices")
        .set(auth)
        .send({serialNumber: `FX-${++serials}`}),
      201,
      "device"
    );
  const makeRule = async (deviceId: string) =>
    created(
      await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30}),
      201,
      "alert rule"
    );
  const makers: Record<keyof Fixtures, (own: Fixtures) => Promise<string>> = {
    deviceId: makeDevice,
    // On a device of its own: a device holds at most 20 rules.
    ruleId: async () => makeRule(await makeDevice()),
    alertId: async () => {
      const deviceId = await makeDevice();
      await makeRule(deviceId);
      const res = await api
        .post(`/api/v1/devices/${deviceId}/readings`)
        .set(auth)
        .send({temperatureCelsius: 35, recordedAt: new Date(Date.now() - 60_000).toISOString()});
      if (res.status !== 201 || res.body.alerts?.length !== 1) throw new Error(`fixture alert: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.alerts[0].id as string;
    },
    // Another user of the tenant (never the caller: deleting the caller would lock every later run out).
    userId: async () => created(await api.get("/api/v1/me").set(await bearer(tenant)), 200, "user"),
    jobId: async () => created(await api.post("/api/v1/admin/aggregations").set(auth).send({date: "2026-01-01"}), 202, "aggregation job"),
    keyId: async (own) => created(await api.post(`/api/v1/devices/${own.deviceId}/keys`).set(auth), 201, "device key"),
    deviceKey: async () => {
      const res = await api.post(`/api/v1/devices/${shared.deviceId}/keys`).set(auth);
      if (res.status !== 201) throw new Error(`fixture device key: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.key as string;
    },
    webhookId: async () => {
      // A tenant holds at most 20 endpoints, and a run whose request was refused leaves its own: make room first.
      const {body} = (await api.get("/api/v1/admin/webhooks").set(auth)) as {body: {items: {id: string}[]}};
      const leftovers = body.items.filter((endpoint) => endpoint.id !== shared.webhookId);
      for (const endpoint of leftovers.slice(0, Math.max(0, body.items.length - 10)))
        expect((await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(auth)).status).toBe(204);
      return created(await api.post("/api/v1/admin/webhooks").set(auth).send({url: "https://8.8.8.8/hook"}), 201, "webhook endpoint");
    },
    eventId: async () => {
      const res = await api.post(`/api/v1/admin/webhooks/${shared.webhookId}/test`).set(auth);
      if (res.status !== 202) throw new Error(`fixture event: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.eventId as string;
    },
    silenceId: async () =>
      created(
        await api
          .post("/api/v1/silences")
          .set(auth)
          .send({endsAt: new Date(Date.now() + 3_600_000).toISOString(), comment: "fuzz"}),
        201,
        "silence"
      )
  };

  beforeAll(async () => {
    api = await startTestServer();
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
    analytics = new pg.Client({connectionString: process.env.ANALYTICS_DATABASE_URL});
    await analytics.connect();
    auth = await bearer(tenant, {roles: ["user", "admin"]});
    for (const name of Object.keys(makers) as (keyof Fixtures)[]) shared[name] = await makers[name](shared);
    // /readings/latest of the shared device needs a reading.
    created(
      await api
        .post(`/api/v1/devices/${shared.deviceId}/readings`)
        .set(auth)
        .send({temperatureCelsius: 20, recordedAt: new Date(Date.now() - 120_000).toISOString()}),
      201,
      "reading"
    );
    const spec = (await api.get("/doc/swagger.json")).body as {
      paths: Record<string, Record<string, {parameters?: {in: string; name: string}[]; requestBody?: unknown}>>;
    };
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        operations.set(`${method.toUpperCase()} ${path}`, {
          method: method as Operation["method"],
          path,
          query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
          hasBody: Boolean(op.requestBody)
        });
      }
    }
  });
  afterAll(async () => {
    console.log(JSON.stringify({fuzz: summary}));
    await db.end();
    await analytics.end();
    await stopTestServer();
  });

  /**
   * What a rejected request must leave as it was: the rows of the tenant's tables, its device keys
   * (and which are active), its registry row (settings), its days marked for a stats repair, and
   * its DailyStats in the analytics database.
   */
  const rowCounts = async () => {
    const counts = TABLES.map((t) => `(select count(*)::int from "${tenant}"."${t}") as "${t}"`).join(", ");
    const [platform, stats] = await Promise.all([
      db.query(
        `select ${counts},
                (select count(*)::int from public.device_keys where tenant_id = $1) as "deviceKeys",
                (select count(*)::int from public.device_keys where tenant_id = $1 and revoked_at is null) as "activeDeviceKeys",
                (select row_to_json(t)::text from public.tenants t where t.id = $1) as "registry",
                (select count(*)::int from public.daily_stats_dirty_days where tenant_id = $1) as "dirtyDays"`,
        [tenant]
      ),
      analytics.query(
        `select count(*)::int as "dailyStats", coalesce(sum(reading_count), 0)::int as "dailyStatsReadings" from daily_stats where tenant_id = $1`,
        [tenant]
      )
    ]);
    return {...platform.rows[0], ...stats.rows[0]} as Record<string, unknown>;
  };

  it("has a generator for every documented operation, and documents every generated one", () => {
    expect(operations.size).toBeGreaterThan(20);
    expect(
      [...operations.keys()].filter((key) => !ROUTES.some((r) => r.route === key)),
      "documented routes without a row in ROUTES"
    ).toEqual([]);
    expect(
      ROUTES.map((r) => r.route).filter((key) => !operations.has(key)),
      "rows of ROUTES the document does not list"
    ).toEqual([]);
  });

  it.each(ROUTES.map((generator) => [generator.route, generator] as const))("%s", async (route, generator) => {
    const op = operations.get(route);
    if (!op) throw new Error(`${route} is not in the OpenAPI document`);
    const statuses: Record<number, number> = {};
    let runs = 0;

    const send = async (parts: RequestParts) => {
      const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(parts.params[name] ?? ""));
      const search = new URLSearchParams(parts.query);
      const before = op.method === "get" ? {} : await rowCounts();
      let request = api[op.method](`${path}?${search}`).set(
        generator.caller === "device" ? {Authorization: `Device ${shared.deviceKey}`} : auth
      );
      // Serialized by hand: any JSON value (a bare number, null, a string) is a possible body.
      if (op.hasBody) request = request.set("Content-Type", "application/json").send(JSON.stringify(parts.body ?? {}) ?? "null");
      if (generator.stream) request = untilStreamHeaders(request);
      const res = await request;
      await generator.after?.(db, shared, tenant);
      runs++;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const what = `${op.method.toUpperCase()} ${path}?${search} ${op.hasBody ? JSON.stringify(parts.body) : ""}`;
      if (res.status >= 500) throw new Error(`${what} → ${res.status} ${JSON.stringify(res.body)}`);
      if (res.status >= 400) {
        expect(res.body, what).toMatchObject({status: res.status, name: expect.any(String), message: expect.any(String)});
        if (op.method !== "get") expect(await rowCounts(), `${what}: a rejected request changed rows`).toEqual(before);
      }
      return {res, what};
    };
    /** The run's fixtures put in place of the placeholders the generator was given. */
    const resolve = async (parts: RequestParts): Promise<RequestParts> => {
      const own = {...shared};
      for (const name of generator.fresh ?? []) own[name] = await makers[name](own);
      const real = (value: string | undefined) =>
        value === undefined ? value : PLACEHOLDER_NAMES.get(value) ? own[PLACEHOLDER_NAMES.get(value)!] : value;
      return {
        params: Object.fromEntries(Object.entries(parts.params).map(([k, v]) => [k, real(v)])),
        query: Object.fromEntries(Object.entries(parts.query).map(([k, v]) => [k, real(v)!])),
        ...(parts.body === undefined ? {} : {body: parts.body})
      };
    };
    const valid = generator.valid(PLACEHOLDERS);

    const validRuns = Math.ceil(RUNS_PER_ROUTE * VALID_SHARE);
    // A valid request must succeed: fast-check shrinks a refused one to the smallest such request.
    await fc.assert(
      fc.asyncProperty(valid, async (parts) => {
        const {res, what} = await send(await resolve(parts));
        if (res.status < 200 || res.status >= 300)
          throw new Error(`valid request refused: ${what} → ${res.status} ${JSON.stringify(res.body)}`);
      }),
      {numRuns: validRuns}
    );
    // Junk: a valid request with one part spoiled (a path id, the query, or the body).
    await fc.assert(
      fc.asyncProperty(valid, spoil, async (parts, junk) => {
        const real = await resolve(parts);
        const spoiled: RequestParts = {params: {...real.params}, query: {...real.query}, body: real.body};
        const names = Object.keys(spoiled.params);
        const part = junk.part === "path" && names.length === 0 ? "query" : junk.part === "body" && !op.hasBody ? "query" : junk.part;
        if (part === "path") spoiled.params[names[junk.pick % names.length]!] = junk.id;
        if (part === "body") spoiled.body = junk.body;
        if (part === "query") {
          op.query.forEach((name, i) => {
            const value = junk.values[i % junk.values.length];
            if (value === undefined) delete spoiled.query[name];
            else spoiled.query[name] = value;
          });
          Object.assign(spoiled.query, junk.stray);
        }
        await send(spoiled);
      }),
      {numRuns: RUNS_PER_ROUTE - validRuns}
    );

    summary[route] = {runs, statuses};
    const ok = Object.entries(statuses)
      .filter(([status]) => Number(status) < 300)
      .reduce((sum, [, n]) => sum + n, 0);
    expect(runs).toBeGreaterThanOrEqual(RUNS_PER_ROUTE);
    expect(ok / runs, `share of 2xx among ${runs} runs: ${JSON.stringify(statuses)}`).toBeGreaterThanOrEqual(MIN_2XX_SHARE);
  });
});
