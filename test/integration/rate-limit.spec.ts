import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

describe("ingestion rate limits (Redis-backed)", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer({rateLimit: {devicePerMinute: 3, tenantPerMinute: 4, tenantReadsPerMinute: 0, tenantHeavyReads: 1_000}});
  });
  afterAll(stopTestServer);

  const post = (auth: Record<string, string>, deviceId: string, i: number) =>
    api.post(`/api/v1/devices/${deviceId}/readings`).set(auth).send({temperatureCelsius: 20, recordedAt: new Date(Date.now() - 600_000 + i * 1000).toISOString()});

  it("answers 429 with Retry-After past the per-device budget, and the per-tenant one across devices", async () => {
    const auth = await bearer(newTenant("rl"));
    const one = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "RL-1"})).body.id;
    const two = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "RL-2"})).body.id;

    const first = [];
    for (let i = 0; i < 4; i++) first.push(await post(auth, one, i));
    expect(first.map((r) => r.status)).toEqual([201, 201, 201, 429]);
    const limited = first[3]!;
    expect(limited.body).toMatchObject({status: 429, name: "TOO_MANY_REQUESTS"});
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);

    // Device two has its own budget, but the tenant has spent 3 of its 4 (a request refused per device spends none).
    const second = [await post(auth, two, 10), await post(auth, two, 11)];
    expect(second.map((r) => r.status)).toEqual([201, 429]);

    // Reads are never rate limited, and another tenant is unaffected.
    expect((await api.get(`/api/v1/devices/${one}`).set(auth)).status).toBe(200);
    const other = await bearer(newTenant("rl"));
    const device = (await api.post("/api/v1/devices").set(other).send({serialNumber: "RL-1"})).body.id;
    expect((await post(other, device, 0)).status).toBe(201);
  });
});
