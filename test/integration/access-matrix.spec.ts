import {randomUUID} from "node:crypto";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {untilStreamHeaders} from "../helpers/stream-headers.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

interface Operation {
  parameters?: {in: string; name: string; required?: boolean; schema?: {format?: string}}[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  security?: unknown[];
  "x-required-role"?: string;
}

type Role = "viewer" | "operator" | "admin";
const ROLES: Role[] = ["viewer", "operator", "admin"];

/** Operations anyone may call: probes, and /metrics (behind METRICS_TOKEN when set; see http-hardening.spec). */
const PUBLIC = new Set(["GET /health/live", "GET /health/ready", "GET /metrics"]);

/** A device's own operations: a device key names its tenant and device, no user token (and no role) applies. */
const DEVICE_SECURITY = [{deviceKey: []}];

/** README "Who may do what": the role each operation needs, from its method and path alone. */
function contractRole(method: string, path: string): Role {
  if (path.startsWith("/api/v1/admin/")) return "admin";
  // A stream token is how a browser opens the stream (GET, a viewer's): asking for one is a read.
  if (method === "post" && path === "/api/v1/stream/tokens") return "viewer";
  return method === "get" ? "viewer" : "operator";
}

/**
 * Every operation the OpenAPI document lists, called by every kind of caller: so a route added
 * later is walked too, and cannot forget its check. What each caller must get:
 * - no token, an ID or refresh token (typ ≠ Bearer): 401;
 * - a viewer, an operator, an admin: 403 when the operation needs a stronger role, else past the
 *   access checks (no 401/403; a 404 for ids that do not exist is fine), always a documented status;
 * - a deleted user, even an admin: 403;
 * - an admin of another tenant, given this tenant's real ids: never a 2xx on them, and never any
 *   of this tenant's ids in an answer (but for an error echoing the id it was asked about).
 * A device's own operations (device key) answer every user token 401, and a device key of the
 * tenant passes.
 */
describe("access: every operation, for every kind of caller", () => {
  let api: Api;
  const tenant = newTenant("access");
  const otherTenant = newTenant("access_other");
  let spec: {paths: Record<string, Record<string, Operation>>};
  let admin: Record<string, string>;
  const owned: Record<string, string> = {};
  const callers: Record<string, Record<string, string>> = {};

  beforeAll(async () => {
    // Webhook endpoints on loopback (nothing listens there; no worker runs to send to them anyway).
    api = await startTestServer({webhooks: {...loadConfig().webhooks, allowPrivate: true}});
    admin = await bearer(tenant, {roles: ["admin"]});
    const ok = (res: {status: number; body: {id?: string; jobId?: string}}, status: number) => {
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      return (res.body.id ?? res.body.jobId)!;
    };
    // Real resources of the tenant, for the other tenant's admin to try.
    owned.deviceId = ok(await api.post("/api/v1/devices").set(admin).send({serialNumber: "ACCESS-1"}), 201);
    owned.ruleId = ok(
      await api.post(`/api/v1/devices/${owned.deviceId}/alert-rules`).set(admin).send({condition: "above", thresholdCelsius: 30}),
      201
    );
    const reading = await api
      .post(`/api/v1/devices/${owned.deviceId}/readings`)
      .set(admin)
      .send({temperatureCelsius: 35, recordedAt: new Date(Date.now() - 60_000).toISOString()});
    owned.alertId = reading.body.alerts?.[0]?.id;
    expect(owned.alertId).toBeTypeOf("string");
    owned.userId = ok(await api.get("/api/v1/me").set(await bearer(tenant, {roles: ["viewer"]})), 200);
    owned.jobId = ok(await api.post("/api/v1/admin/aggregations").set(admin).send({date: "2026-01-01"}), 202);

    // An admin whom another admin deletes: locked out of everything from then on.
    const deleted = await bearer(tenant, {roles: ["admin"]});
    const deletedId = ok(await api.get("/api/v1/me").set(deleted), 200);
    expect((await api.delete(`/api/v1/admin/users/${deletedId}`).set(admin)).status).toBe(204);

    callers.viewer = await bearer(tenant, {roles: ["viewer"]});
    callers.operator = await bearer(tenant, {roles: ["operator"]});
    callers.admin = admin;
    callers.deleted = deleted;
    callers.idToken = await bearer(tenant, {roles: ["admin"], claims: {typ: "ID"}});
    callers.refreshToken = await bearer(tenant, {roles: ["admin"], claims: {typ: "Refresh"}});
    callers.otherTenant = await bearer(otherTenant, {roles: ["admin"]});
    const key = await api.post(`/api/v1/devices/${owned.deviceId}/keys`).set(admin);
    expect(key.status, JSON.stringify(key.body)).toBe(201);
    owned.keyId = key.body.id;
    callers.device = {Authorization: `Device ${key.body.key}`};

    spec = (await api.get("/doc/swagger.json")).body;
  });
  afterAll(stopTestServer);

  const all = () =>
    Object.entries(spec.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({method, path, operation, name: `${method.toUpperCase()} ${path}`}))
    );
  const isDeviceOperation = (op: ReturnType<typeof all>[number]) =>
    JSON.stringify(op.operation.security) === JSON.stringify(DEVICE_SECURITY);
  /** The operations a user's token opens (everything but the public and the device operations). */
  const operations = () => all().filter((op) => !isDeviceOperation(op));

  /** A live stream answers with its headers (untilStreamHeaders); everything else as usual. */
  const untilHeadersOfAStream = <R extends ReturnType<Api["get"]>>(op: ReturnType<typeof all>[number], request: R): R =>
    (op.operation.responses["200"] as {content?: Record<string, unknown>} | undefined)?.content?.["text/event-stream"]
      ? untilStreamHeaders(request)
      : request;

  /**
   * The operation called with the given path ids (a fresh id per parameter when not given), `{}`
   * as body; with the URL it called.
   */
  const callAndKeepUrl = async (
    op: ReturnType<typeof all>[number],
    auth: Record<string, string> | undefined,
    ids: Record<string, string> = {}
  ) => {
    const path = op.path.replace(
      /\{(\w+)\}/g,
      (_m, name: string) => ids[name] ?? (name === "jobId" ? "manual.nobody.2026-01-01" : randomUUID())
    );
    // Required query parameters naming an id get this tenant's: the other tenant must not read through them.
    const query = new URLSearchParams();
    for (const p of op.operation.parameters ?? []) if (p.in === "query" && p.required && ids[p.name]) query.set(p.name, ids[p.name]!);
    const url = `${path}${query.size ? `?${query}` : ""}`;
    let request = api[op.method as "get"](url);
    if (auth) request = request.set(auth);
    return {
      request: url,
      res: await (op.operation.requestBody ? untilHeadersOfAStream(op, request).send({}) : untilHeadersOfAStream(op, request))
    };
  };
  const call = async (...args: Parameters<typeof callAndKeepUrl>) => (await callAndKeepUrl(...args)).res;

  it("documents a role on every operation but the public and the device ones, as README's Who may do what assigns it", () => {
    expect(operations().length).toBeGreaterThanOrEqual(28);
    expect(
      all()
        .filter(isDeviceOperation)
        .map((op) => op.name)
    ).toEqual(["POST /api/v1/device/readings"]);
    for (const op of operations()) {
      if (PUBLIC.has(op.name)) {
        expect(op.operation.security, op.name).toBeUndefined();
        continue;
      }
      expect(op.path.startsWith("/api/v1/"), `${op.name} is neither public nor under /api/v1`).toBe(true);
      expect(op.operation.security, op.name).toEqual([{bearer: []}]);
      expect(op.operation["x-required-role"], op.name).toBe(contractRole(op.method, op.path));
      expect(Object.keys(op.operation.responses), op.name).toEqual(expect.arrayContaining(["401", "403"]));
    }
  });

  it("answers the public operations without a token", async () => {
    for (const op of operations().filter((o) => PUBLIC.has(o.name))) {
      expect((await call(op, undefined)).status, op.name).toBe(200);
    }
  });

  it("answers 401 without a token, and to ID and refresh tokens", async () => {
    for (const op of operations().filter((o) => !PUBLIC.has(o.name))) {
      for (const auth of [undefined, callers.idToken, callers.refreshToken]) {
        const res = await call(op, auth);
        expect(res.status, `${op.name} ${auth ? "typ≠Bearer" : "no token"}`).toBe(401);
        expect(res.body).toMatchObject({status: 401, name: "UNAUTHORIZED"});
      }
    }
  });

  it.each(ROLES)("lets a %s through exactly the operations its role allows", async (role) => {
    const refused: string[] = [];
    for (const op of operations().filter((o) => !PUBLIC.has(o.name))) {
      const required = op.operation["x-required-role"] as Role;
      const res = await call(op, callers[role]);
      const what = `${op.name} as ${role} → ${res.status} ${JSON.stringify(res.body)}`;
      expect(res.status, what).toBeLessThan(500);
      expect(Object.keys(op.operation.responses), `${what}: undocumented status`).toContain(String(res.status));
      if (ROLES.indexOf(role) < ROLES.indexOf(required)) {
        expect(res.status, what).toBe(403);
        expect(res.body.message, what).toContain(required);
        refused.push(op.name);
      } else {
        expect([401, 403], what).not.toContain(res.status);
      }
    }
    // Not vacuous: a viewer is refused every write, an operator every admin route, an admin nothing.
    if (role === "admin") expect(refused).toEqual([]);
    else expect(refused.length).toBeGreaterThan(3);
  });

  /** A valid request of an operation: path ids, query and body; resources it changes are made for it (as the admin). */
  interface ValidRequest {
    ids?: Record<string, string>;
    query?: Record<string, string>;
    body?: object;
  }
  let serial = 0;
  const created = async (res: Promise<{status: number; body: {id?: string}}>) => {
    const {status, body} = await res;
    expect(status, JSON.stringify(body)).toBeLessThan(300);
    return body.id!;
  };
  const freshDevice = () =>
    created(
      api
        .post("/api/v1/devices")
        .set(admin)
        .send({serialNumber: `ACCESS-OK-${++serial}`})
    );
  const freshRule = async (deviceId: string) =>
    created(api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(admin).send({condition: "above", thresholdCelsius: 30}));
  const recently = () => new Date(Date.now() - 60_000).toISOString();
  const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();
  const freshWebhook = () => created(api.post("/api/v1/admin/webhooks").set(admin).send({url: "http://127.0.0.1:9/access"}));
  /**
   * One valid request per operation a user's token opens. Changes never touch the `owned`
   * resources (the cross-tenant check below expects them as they were): they get fresh ones.
   */
  const VALID: Record<string, () => Promise<ValidRequest>> = {
    "GET /api/v1/me": async () => ({}),
    "GET /api/v1/admin/users": async () => ({query: {withDeleted: "true"}}),
    "DELETE /api/v1/admin/users/{userId}": async () => ({
      ids: {userId: await created(api.get("/api/v1/me").set(await bearer(tenant, {roles: ["viewer"]})))}
    }),
    "POST /api/v1/devices": async () => ({body: {serialNumber: `ACCESS-NEW-${++serial}`, name: "New"}}),
    "GET /api/v1/devices": async () => ({query: {page: "1", pageSize: "10"}}),
    "GET /api/v1/devices/{deviceId}": async () => ({ids: {deviceId: owned.deviceId!}}),
    "PATCH /api/v1/devices/{deviceId}": async () => ({ids: {deviceId: await freshDevice()}, body: {name: "Renamed"}}),
    "DELETE /api/v1/devices/{deviceId}": async () => ({ids: {deviceId: await freshDevice()}}),
    "POST /api/v1/devices/{deviceId}/alert-rules": async () => ({
      ids: {deviceId: await freshDevice()},
      body: {condition: "below", thresholdCelsius: 5}
    }),
    "GET /api/v1/devices/{deviceId}/alert-rules": async () => ({ids: {deviceId: owned.deviceId!}}),
    "POST /api/v1/devices/{deviceId}/alert-rules/backtest": async () => ({
      ids: {deviceId: owned.deviceId!},
      body: {
        condition: "above",
        thresholdCelsius: 30,
        forSeconds: 60,
        from: new Date(Date.now() - 86_400_000).toISOString(),
        to: inAnHour()
      }
    }),
    "PATCH /api/v1/alert-rules/{ruleId}": async () => ({ids: {ruleId: await freshRule(await freshDevice())}, body: {thresholdCelsius: 31}}),
    "DELETE /api/v1/alert-rules/{ruleId}": async () => ({ids: {ruleId: await freshRule(await freshDevice())}}),
    "GET /api/v1/devices/{deviceId}/alerts": async () => ({ids: {deviceId: owned.deviceId!}, query: {open: "true"}}),
    "GET /api/v1/alerts": async () => ({query: {open: "true", acknowledged: "false", severity: "warning", page: "1", pageSize: "10"}}),
    "POST /api/v1/alerts/{alertId}/acknowledge": async () => {
      const deviceId = await freshDevice();
      await freshRule(deviceId);
      const res = await api.post(`/api/v1/devices/${deviceId}/readings`).set(admin).send({temperatureCelsius: 35, recordedAt: recently()});
      expect(res.body.alerts?.length, JSON.stringify(res.body)).toBe(1);
      return {ids: {alertId: res.body.alerts[0].id}, body: {comment: "Checked the door"}};
    },
    "GET /api/v1/devices/{deviceId}/stats/daily": async () => ({
      ids: {deviceId: owned.deviceId!},
      query: {from: "2026-01-01", to: "2026-01-31"}
    }),
    "GET /api/v1/devices/{deviceId}/stats/weekly": async () => ({ids: {deviceId: owned.deviceId!}}),
    "GET /api/v1/devices/{deviceId}/stats/hourly": async () => ({ids: {deviceId: owned.deviceId!}, query: {hours: "24"}}),
    "POST /api/v1/admin/aggregations": async () => ({body: {date: "2026-01-02"}}),
    "GET /api/v1/admin/aggregations/{jobId}": async () => ({ids: {jobId: owned.jobId!}}),
    "POST /api/v1/devices/{deviceId}/readings": async () => ({
      ids: {deviceId: await freshDevice()},
      body: {temperatureCelsius: 21, recordedAt: recently()}
    }),
    "POST /api/v1/devices/{deviceId}/readings/batch": async () => ({
      ids: {deviceId: await freshDevice()},
      body: {readings: [{temperatureCelsius: 21, recordedAt: recently()}]}
    }),
    "GET /api/v1/devices/{deviceId}/readings": async () => ({ids: {deviceId: owned.deviceId!}, query: {limit: "10"}}),
    "GET /api/v1/devices/{deviceId}/readings/latest": async () => ({ids: {deviceId: owned.deviceId!}}),
    "GET /api/v1/readings/export": async () => ({
      query: {from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date().toISOString(), format: "csv"}
    }),
    "POST /api/v1/devices/{deviceId}/keys": async () => ({ids: {deviceId: await freshDevice()}}),
    "GET /api/v1/devices/{deviceId}/keys": async () => ({ids: {deviceId: owned.deviceId!}}),
    "DELETE /api/v1/devices/{deviceId}/keys/{keyId}": async () => {
      const deviceId = await freshDevice();
      return {ids: {deviceId, keyId: await created(api.post(`/api/v1/devices/${deviceId}/keys`).set(admin))}};
    },
    "GET /api/v1/admin/explain/readings": async () => ({query: {deviceId: owned.deviceId!}}),
    "GET /api/v1/admin/tenant": async () => ({}),
    "PATCH /api/v1/admin/tenant": async () => ({body: {rawRetentionDays: null}}),
    "POST /api/v1/admin/webhooks": async () => ({body: {url: "http://127.0.0.1:9/access", description: "new"}}),
    "GET /api/v1/admin/webhooks": async () => ({}),
    "GET /api/v1/admin/webhooks/{id}": async () => ({ids: {id: await freshWebhook()}}),
    "PATCH /api/v1/admin/webhooks/{id}": async () => ({ids: {id: await freshWebhook()}, body: {description: "renamed"}}),
    "DELETE /api/v1/admin/webhooks/{id}": async () => ({ids: {id: await freshWebhook()}}),
    "POST /api/v1/admin/webhooks/{id}/rotate-secret": async () => ({ids: {id: await freshWebhook()}}),
    "POST /api/v1/admin/webhooks/{id}/test": async () => ({ids: {id: await freshWebhook()}}),
    "GET /api/v1/admin/webhooks/{id}/deliveries": async () => ({ids: {id: await freshWebhook()}, query: {page: "1"}}),
    "POST /api/v1/admin/webhooks/{id}/deliveries/{eventId}/replay": async () => {
      const id = await freshWebhook();
      const sent = await api.post(`/api/v1/admin/webhooks/${id}/test`).set(admin);
      expect(sent.status, JSON.stringify(sent.body)).toBe(202);
      return {ids: {id, eventId: sent.body.eventId}};
    },
    "POST /api/v1/silences": async () => ({body: {deviceId: await freshDevice(), endsAt: inAnHour(), comment: "maintenance"}}),
    "GET /api/v1/silences": async () => ({}),
    "DELETE /api/v1/silences/{id}": async () => ({
      ids: {
        id: await created(
          api
            .post("/api/v1/silences")
            .set(admin)
            .send({deviceId: await freshDevice(), endsAt: inAnHour(), comment: "x"})
        )
      }
    }),
    "GET /api/v1/stream": async () => ({}),
    "POST /api/v1/stream/tokens": async () => ({})
  };

  it.each(ROLES)("answers a valid request of every operation a %s may call with a 2xx", async (role) => {
    const userOperations = operations().filter((o) => !PUBLIC.has(o.name));
    expect(
      userOperations.map((op) => op.name).filter((name) => !VALID[name]),
      "operations without a valid request here"
    ).toEqual([]);
    let succeeded = 0;
    for (const op of userOperations) {
      if (ROLES.indexOf(role) < ROLES.indexOf(op.operation["x-required-role"] as Role)) continue;
      const {ids = {}, query = {}, body} = await VALID[op.name]!();
      const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(ids[name]!));
      const search = new URLSearchParams(query);
      let request = untilHeadersOfAStream(op, api[op.method as "get"](`${path}${search.size ? `?${search}` : ""}`).set(callers[role]!));
      if (body !== undefined) request = request.send(body);
      const res = await request;
      expect(res.status, `${op.name} as ${role} → ${res.status} ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(200);
      expect(res.status, `${op.name} as ${role} → ${res.status} ${JSON.stringify(res.body)}`).toBeLessThan(300);
      succeeded++;
    }
    // A viewer reads (every GET outside /admin), an operator writes too, an admin calls everything.
    expect(succeeded).toBeGreaterThanOrEqual({viewer: 10, operator: 20, admin: userOperations.length}[role]);
  });

  it("answers 403 to a deleted user on every operation, whatever its role", async () => {
    for (const op of operations().filter((o) => !PUBLIC.has(o.name))) {
      const res = await call(op, callers.deleted, owned);
      expect(res.status, op.name).toBe(403);
      expect(res.body.message, op.name).toMatch(/deleted/);
    }
  });

  it("never lets another tenant's admin reach this tenant's resources, nor see their ids", async () => {
    const ids = Object.values(owned);
    for (const op of operations().filter((o) => !PUBLIC.has(o.name))) {
      const {request, res} = await callAndKeepUrl(op, callers.otherTenant, owned);
      const what = `${op.name} from another tenant → ${res.status} ${JSON.stringify(res.body)}`;
      expect(res.status, what).toBeLessThan(500);
      if (/\{\w+\}/.test(op.path) || op.operation.parameters?.some((p) => p.in === "query" && p.required && owned[p.name])) {
        expect(res.status >= 200 && res.status < 300, what).toBe(false);
      }
      // An error may echo the id it was asked for (the request's own URL); nothing else of ours.
      const text = JSON.stringify(res.body);
      for (const id of ids.filter((id) => !request.includes(id))) expect(text, what).not.toContain(id);
    }
    // The resources are all still there for their own tenant.
    expect((await api.get(`/api/v1/devices/${owned.deviceId}`).set(admin)).body).toMatchObject({id: owned.deviceId, isActive: true});
    expect((await api.get(`/api/v1/devices/${owned.deviceId}/alert-rules`).set(admin)).body.total).toBe(1);
    // The device key is neither revoked nor replaced,
    expect((await api.get(`/api/v1/devices/${owned.deviceId}/keys`).set(admin)).body.items.map((k: {id: string}) => k.id)).toEqual([
      owned.keyId
    ]);
    // the alert is still open and unacknowledged,
    const alerts = (await api.get(`/api/v1/devices/${owned.deviceId}/alerts`).set(admin)).body as Record<string, unknown>[];
    expect(alerts).toEqual([expect.objectContaining({id: owned.alertId, resolvedAt: null, acknowledgedAt: null})]);
    // and the user is not deleted.
    const users = (await api.get("/api/v1/admin/users").set(admin)).body;
    expect((users.items ?? users).map((u: {id: string}) => u.id)).toContain(owned.userId);
  });

  it("answers a device's own operations only with a device key: every user token gets 401", async () => {
    for (const op of all().filter(isDeviceOperation)) {
      for (const [name, auth] of Object.entries(callers)) {
        if (name === "device") continue;
        const res = await call(op, auth);
        expect(res.status, `${op.name} as ${name}`).toBe(401);
      }
      expect((await call(op, undefined)).status, `${op.name} without credentials`).toBe(401);
      const asDevice = await call(op, callers.device);
      expect([401, 403], `${op.name} as the device → ${asDevice.status} ${JSON.stringify(asDevice.body)}`).not.toContain(asDevice.status);
      expect(asDevice.status).toBeLessThan(500);
    }
  });
});
