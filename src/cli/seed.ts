/**
 * npm run seed -- --tenant building_a [--days 7]
 * Demo data for a tenant, so a newcomer sees real dashboards at once: a few devices with
 * locations, alert rules, a week of readings every 30 s (a daily curve plus noise, and a server
 * room that overheats one afternoon). Everything goes through the application's own services, as
 * a request would: the alert episodes and the daily stats are what ingestion makes of the
 * readings. Idempotent: running it again adds nothing twice (readings are unique per instant).
 */
import {parseArgs} from "node:util";
import {DIContext, inject, logger, runInContext} from "@tsed/common";
import {startHeadless} from "../bootstrap.js";
import {loadConfig} from "../config/app-config.js";
import {AlertCondition, AlertRuleKind, AlertSeverity} from "../modules/alerts/alert-rule.entity.js";
import {AlertRuleService, type NewAlertRule} from "../modules/alerts/alert-rule.service.js";
import {DeviceService} from "../modules/devices/device.service.js";
import {MAX_BATCH_SIZE, type ReadingInput} from "../modules/readings/reading.models.js";
import {ReadingService} from "../modules/readings/reading.service.js";
import {TenantContext} from "../platform/tenancy/tenant-context.js";
import {isValidTenantId} from "../platform/tenancy/tenant-id.js";
import {TenantProvisionerService} from "../platform/tenancy/tenant-provisioner.service.js";

const {values} = parseArgs({options: {tenant: {type: "string"}, days: {type: "string", default: "7"}}});
if (!values.tenant || !isValidTenantId(values.tenant)) {
  console.error("usage: npm run seed -- --tenant <tenant_id> [--days 7]");
  process.exit(2);
}
const tenant = values.tenant;
const days = Math.min(Math.max(Number(values.days) || 7, 1), 31);
const STEP_MS = 30_000;

const DEVICES: {serial: string; name: string; location: string; base: number; swing: number; rules: NewAlertRule[]}[] = [
  {
    serial: "DEMO-LOBBY",
    name: "Lobby",
    location: "Ground floor, entrance",
    base: 21,
    swing: 1.5,
    rules: [{condition: AlertCondition.BELOW, thresholdCelsius: 17}]
  },
  {
    serial: "DEMO-OFFICE-2",
    name: "Open office",
    location: "Floor 2, east wing",
    base: 22,
    swing: 2,
    rules: [{condition: AlertCondition.ABOVE, thresholdCelsius: 27, forSeconds: 600, clearDeltaCelsius: 1}]
  },
  {
    serial: "DEMO-SERVER",
    name: "Server room",
    location: "Basement, rack row B",
    base: 24,
    swing: 1,
    rules: [
      {condition: AlertCondition.ABOVE, thresholdCelsius: 30, forSeconds: 300, severity: AlertSeverity.CRITICAL, remindEverySeconds: 3600},
      {kind: AlertRuleKind.NO_DATA, silenceSeconds: 300, severity: AlertSeverity.CRITICAL}
    ]
  },
  {
    serial: "DEMO-COLD",
    name: "Cold storage",
    location: "Loading dock",
    base: 4,
    swing: 0.8,
    rules: [{condition: AlertCondition.ABOVE, thresholdCelsius: 8, forSeconds: 900, clearDeltaCelsius: 1, severity: AlertSeverity.CRITICAL}]
  },
  {
    serial: "DEMO-ROOF",
    name: "Roof terrace",
    location: "Roof",
    base: 12,
    swing: 6,
    rules: [{kind: AlertRuleKind.NO_DATA, silenceSeconds: 3600}]
  },
  {
    serial: "DEMO-LAB",
    name: "Lab",
    location: "Floor 3, room 301",
    base: 20,
    swing: 1,
    rules: [{condition: AlertCondition.ABOVE, thresholdCelsius: 25}]
  }
];

/** A daily sine (coldest at 05:00 UTC) plus noise; the server room overheats for two hours on day 2. */
function readingsOf(device: (typeof DEVICES)[number], start: number, end: number): ReadingInput[] {
  const readings: ReadingInput[] = [];
  const heatFrom = start + (24 + 14) * 3_600_000;
  for (let t = start; t <= end; t += STEP_MS) {
    const daily = device.swing * Math.sin(2 * Math.PI * (t / 86_400_000 - 11 / 24));
    const overheat = device.serial === "DEMO-SERVER" && t >= heatFrom && t < heatFrom + 2 * 3_600_000 ? 9 : 0;
    readings.push({
      temperatureCelsius: Math.round((device.base + daily + (Math.random() - 0.5) * 0.4 + overheat) * 100) / 100,
      humidity: Math.round((45 + 10 * Math.random()) * 10) / 10,
      batteryLevel: Math.round(Math.max(0.05, 1 - (t - start) / (86_400_000 * 90)) * 1000) / 1000,
      recordedAt: new Date(t)
    });
  }
  return readings;
}

const config = {...loadConfig({developmentWhenUnset: true}), runWorkers: false};
const platform = await startHeadless(config, {logger: {level: "warn"}});
try {
  await inject(TenantProvisionerService).ensure(tenant);
  const end = Math.floor(Date.now() / STEP_MS) * STEP_MS;
  const start = end - days * 86_400_000;
  const summary = await runInContext(new DIContext({id: "seed"}), async () => {
    inject(TenantContext).bind(tenant, {subject: "seed", tenantClaim: tenant, role: "admin", name: "Demo owner"});
    const devices = inject(DeviceService);
    const rules = inject(AlertRuleService);
    const readings = inject(ReadingService);
    let stored = 0;
    let alerts = 0;
    for (const device of DEVICES) {
      const {id} =
        (await devices.findBySerialNumber(device.serial)) ??
        (await devices.register({serialNumber: device.serial, name: device.name, location: device.location}));
      if ((await rules.listForDevice(id, 1, 1)).total === 0) for (const rule of device.rules) await rules.create(id, rule);
      const all = readingsOf(device, start, end);
      for (let i = 0; i < all.length; i += MAX_BATCH_SIZE) {
        const receipt = await readings.ingest({tenantId: tenant, deviceId: id, readings: all.slice(i, i + MAX_BATCH_SIZE), single: false});
        stored += receipt.inserted;
        alerts += receipt.alertsFired;
      }
    }
    return {stored, alerts};
  });
  console.log(
    `seeded tenant ${tenant}: ${DEVICES.length} devices, ${summary.stored} new readings (${days} days every 30 s), ${summary.alerts} alert episodes opened`
  );
  console.log(
    `try: TOKEN=$(npm run -s token -- --tenant ${tenant} --role admin); curl -H "Authorization: Bearer $TOKEN" localhost:${config.port}/api/v1/devices`
  );
} catch (error) {
  logger().error({event: "SEED_FAILED", error_message: (error as Error).message});
  console.error("seed failed:", error);
  process.exitCode = 1;
} finally {
  await platform.stop();
  // @tsed/bullmq 8.38 registers an $onDestroy hook on each queue that Ts.ED never calls, so the
  // queue's Redis connection outlives platform.stop(): exit instead of waiting for it to close.
  process.exit();
}
