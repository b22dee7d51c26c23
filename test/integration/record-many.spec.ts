import {inject} from "@tsed/common";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {NotFoundError} from "../../src/common/errors.js";
import {AlertCondition} from "../../src/modules/alerts/alert-rule.entity.js";
import {AlertRuleService} from "../../src/modules/alerts/alert-rule.service.js";
import {DeviceService} from "../../src/modules/devices/device.service.js";
import type {ReadingInput} from "../../src/modules/readings/reading.models.js";
import {ReadingService} from "../../src/modules/readings/reading.service.js";
import {asTenant} from "../helpers/service-context.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";
import {startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";

const at = (minutes: number, temperatureCelsius = 20): ReadingInput => ({
  temperatureCelsius,
  humidity: null,
  batteryLevel: null,
  recordedAt: new Date(minute(minutes))
});

/**
 * ReadingService.ingest on the MQTT transport, whose lanes group what arrives within the window:
 * each batch is answered as it would be alone, and each device's readings take the path they
 * would take alone.
 */
describe("ReadingService.ingest, batches grouped in one write", () => {
  const tenant = newTenant("many");
  let db: TenantDb;

  beforeAll(async () => {
    await startTestServer();
    await asTenant(tenant, async () => undefined);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  it("answers every batch alone: duplicates across messages, a refused batch, an inactive device, an episode opened by the alert path", async () => {
    const {plain, plain2, alerting, inactive} = await asTenant(tenant, async () => {
      const devices = inject(DeviceService);
      const make = async (serial: string) => (await devices.register({serialNumber: serial})).id;
      const ids = {
        plain: await make("MANY-1"),
        plain2: await make("MANY-2"),
        alerting: await make("MANY-3"),
        inactive: await make("MANY-4")
      };
      await inject(AlertRuleService).create(ids.alerting, {condition: AlertCondition.ABOVE, thresholdCelsius: 30});
      await inject(AlertRuleService).create(ids.plain, {condition: AlertCondition.ABOVE, thresholdCelsius: 30});
      await devices.deactivate(ids.inactive);
      return ids;
    });
    const batches = [
      {deviceId: plain, readings: [at(1), at(2)], single: false},
      {deviceId: plain2, readings: [at(1)], single: true},
      {deviceId: plain, readings: [at(2, 25), at(3)], single: false}, // minute 2 again: a duplicate of the first message
      {deviceId: alerting, readings: [at(1, 35), at(2, 36)], single: false},
      {deviceId: inactive, readings: [at(1)], single: false},
      {deviceId: plain2, readings: [{...at(9), recordedAt: new Date(Date.now() + 3_600_000)}], single: true}
    ];
    // Submitted together, so that they share the tenant's open group (the MQTT window).
    const outcomes = await asTenant(tenant, () =>
      Promise.all(
        batches.map((batch) =>
          inject(ReadingService)
            .ingest({tenantId: tenant, ...batch}, "mqtt")
            .then(
              (answer) => ({
                receipt: "items" in answer ? answer : undefined,
                created: "items" in answer ? undefined : answer,
                error: undefined
              }),
              (error: unknown) => ({receipt: undefined, created: undefined, error})
            )
        )
      )
    );
    expect(outcomes[0]!.receipt).toMatchObject({inserted: 2, duplicates: 0, alertsFired: 0});
    expect(outcomes[1]!.created).toMatchObject({duplicate: false, reading: {deviceId: plain2}});
    expect(outcomes[2]!.receipt).toMatchObject({inserted: 1, duplicates: 1});
    expect(outcomes[2]!.receipt!.items.map((i) => i.status)).toEqual(["duplicate", "accepted"]);
    expect(outcomes[3]!.receipt).toMatchObject({inserted: 2, duplicates: 0, alertsFired: 1});
    expect(outcomes[4]!.error).toBeInstanceOf(NotFoundError);
    expect(outcomes[5]!.error).toMatchObject({
      status: 400,
      errors: [expect.objectContaining({instancePath: "/recordedAt", keyword: "maxFutureSkew"})]
    });

    const [kept] = await db.query<{t: number}>(
      `select temperature_celsius as t from ${db.schema}.temperature_readings where device_id = $1 and recorded_at = $2`,
      [plain, minute(2)]
    );
    expect(kept!.t).toBe(20); // the first message's reading
    expect(await db.count("temperature_readings", "device_id = $1", [inactive])).toBe(0);
    expect(await db.count("alerts")).toBe(1);
    // The devices that cannot change an episode share one statement (one transaction); the alerting one had its own.
    const xmins = await db.query<{device: string; xmin: string}>(
      `select device_id::text as device, xmin::text from ${db.schema}.temperature_readings`
    );
    const shared = new Set(xmins.filter((r) => r.device !== alerting).map((r) => r.xmin));
    expect(shared.size).toBe(1);
    expect(xmins.filter((r) => r.device === alerting).every((r) => !shared.has(r.xmin))).toBe(true);
  });
});
