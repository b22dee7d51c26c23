import {inject} from "@tsed/common";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {SilenceRepository} from "../../src/modules/notifications/silence.repository.js";
import {TenantContext} from "../../src/platform/tenancy/tenant-context.js";
import {runAsTenant} from "../../src/platform/tenancy/tenant-scope.js";
import {createDevice} from "../helpers/factories.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";

const inHours = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();

/** Silences (docs/api.md, "Receiving webhooks"): stored, validated, ended; and the question the relay asks them. */
describe("silences", () => {
  let api: Api;
  let tenant: string;
  let operator: Record<string, string>;
  let admin: Record<string, string>;
  let deviceId: string;
  let otherDeviceId: string;
  let ruleId: string;

  const silenced = (scope: {deviceId: string | null; ruleId: string | null}, at = new Date()) =>
    runAsTenant(tenant, () => inject(SilenceRepository).isSilenced(inject(TenantContext).em, tenant, scope, at));

  beforeAll(async () => {
    api = await startTestServer();
    tenant = newTenant("silence");
    operator = await bearer(tenant, {roles: ["operator"]});
    admin = await bearer(tenant, {roles: ["admin"]});
    deviceId = await createDevice(api, operator, "SIL-1");
    otherDeviceId = await createDevice(api, operator, "SIL-2");
    const rule = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(operator).send({condition: "above", thresholdCelsius: 30});
    expect(rule.status).toBe(201);
    ruleId = rule.body.id;
  });
  afterAll(() => stopTestServer());

  it("creates a device silence (operator), lists it, and DELETE ends it now keeping the row", async () => {
    const created = await api
      .post("/api/v1/silences")
      .set(operator)
      .send({deviceId, endsAt: inHours(2), comment: "calibrating"});
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({deviceId, ruleId: null, comment: "calibrating", createdBy: expect.any(String)});
    expect(await silenced({deviceId, ruleId: null})).toBe(true);
    expect(await silenced({deviceId: otherDeviceId, ruleId: null})).toBe(false);
    expect(await silenced({deviceId, ruleId: null}, new Date(Date.now() + 3 * 3_600_000))).toBe(false);

    const active = await api
      .get("/api/v1/silences?active=true")
      .set(await bearer(tenant, {roles: ["viewer"]}))
      .expect(200);
    expect(active.body.items.map((s: {id: string}) => s.id)).toContain(created.body.id);

    const ended = await api.delete(`/api/v1/silences/${created.body.id}`).set(operator).expect(200);
    expect(new Date(ended.body.endsAt).getTime()).toBeLessThanOrEqual(Date.now());
    expect(await silenced({deviceId, ruleId: null})).toBe(false);
    const inactive = await api.get("/api/v1/silences?active=false").set(operator).expect(200);
    expect(inactive.body.items.map((s: {id: string}) => s.id)).toContain(created.body.id);
  });

  it("scopes a rule silence to the rule, and a tenant silence (admin only) to everything", async () => {
    const rule = await api
      .post("/api/v1/silences")
      .set(operator)
      .send({ruleId, endsAt: inHours(1), comment: "known issue"})
      .expect(201);
    expect(await silenced({deviceId: otherDeviceId, ruleId})).toBe(true);
    expect(await silenced({deviceId, ruleId: null})).toBe(false);
    await api.delete(`/api/v1/silences/${rule.body.id}`).set(operator).expect(200);

    await api
      .post("/api/v1/silences")
      .set(operator)
      .send({endsAt: inHours(1), comment: "all"})
      .expect(403);
    const all = await api
      .post("/api/v1/silences")
      .set(admin)
      .send({endsAt: inHours(1), comment: "all"})
      .expect(201);
    expect(await silenced({deviceId: otherDeviceId, ruleId: null})).toBe(true);
    await api.delete(`/api/v1/silences/${all.body.id}`).set(operator).expect(403);
    await api.delete(`/api/v1/silences/${all.body.id}`).set(admin).expect(200);
    expect(await silenced({deviceId: otherDeviceId, ruleId: null})).toBe(false);
  });

  it("starts a future silence at startsAt; deleting it before then means it never holds anything back", async () => {
    const later = await api
      .post("/api/v1/silences")
      .set(operator)
      .send({deviceId, startsAt: inHours(1), endsAt: inHours(2), comment: "maintenance window"})
      .expect(201);
    expect(await silenced({deviceId, ruleId: null})).toBe(false);
    expect(await silenced({deviceId, ruleId: null}, new Date(Date.now() + 1.5 * 3_600_000))).toBe(true);
    await api.delete(`/api/v1/silences/${later.body.id}`).set(operator).expect(200);
    expect(await silenced({deviceId, ruleId: null}, new Date(Date.now() + 1.5 * 3_600_000))).toBe(false);
  });

  it("answers 400 for more than 7 days, an end in the past, no comment, a rule of another device; 404 for unknown ids", async () => {
    const bad = [
      {deviceId, endsAt: inHours(7 * 24 + 1), comment: "x"},
      {deviceId, startsAt: inHours(-3), endsAt: inHours(-1), comment: "x"},
      {deviceId, endsAt: inHours(1)},
      {deviceId, endsAt: inHours(1), comment: ""},
      {deviceId, endsAt: inHours(1), comment: "   "},
      {deviceId: otherDeviceId, ruleId, endsAt: inHours(1), comment: "x"},
      {deviceId: "nope", endsAt: inHours(1), comment: "x"},
      {deviceId, endsAt: "0000-01-01T00:00:00Z", comment: "x"},
      {deviceId, endsAt: "tomorrow", comment: "x"}
    ];
    for (const body of bad) {
      const res = await api.post("/api/v1/silences").set(operator).send(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({status: 400, message: expect.any(String)});
    }
    const unknown = "00000000-0000-4000-8000-000000000000";
    await api
      .post("/api/v1/silences")
      .set(operator)
      .send({deviceId: unknown, endsAt: inHours(1), comment: "x"})
      .expect(404);
    await api
      .post("/api/v1/silences")
      .set(operator)
      .send({ruleId: unknown, endsAt: inHours(1), comment: "x"})
      .expect(404);
    await api.delete(`/api/v1/silences/${unknown}`).set(operator).expect(404);
    await api
      .post("/api/v1/silences")
      .set(await bearer(tenant, {roles: ["viewer"]}))
      .send({deviceId, endsAt: inHours(1), comment: "x"})
      .expect(403);
  });
});
