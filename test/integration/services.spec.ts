import {getQueueToken} from "@tsed/bullmq";
import {inject} from "@tsed/common";
import type {Queue} from "bullmq";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {AlertCondition} from "../../src/modules/alerts/alert-rule.entity.js";
import {AlertRuleService} from "../../src/modules/alerts/alert-rule.service.js";
import {AlertService} from "../../src/modules/alerts/alert.service.js";
import {DeviceService} from "../../src/modules/devices/device.service.js";
import {ReadingService} from "../../src/modules/readings/reading.service.js";
import {AGGREGATION_JOBS, AGGREGATION_QUEUE} from "../../src/modules/stats/daily-stats-recompute.queue.js";
import {DailyStatsRecomputeJobsService} from "../../src/modules/stats/daily-stats-recompute-jobs.service.js";
import {asTenant} from "../helpers/service-context.js";
import {startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";

/** Services on the real database and Redis, without HTTP: the rules no route shows directly. */
describe("services", () => {
  beforeAll(async () => {
    // A queue prefix of its own: another spec file's worker must not take this file's jobs.
    await startTestServer({runWorkers: false, queuePrefix: `${loadConfig().queuePrefix}:services`});
  });
  afterAll(async () => {
    await stopTestServer();
  });

  describe("AlertRuleService.update", () => {
    /** A device with an `above 30` rule and an open episode (one violating reading). */
    async function openEpisode(tenant: string) {
      return asTenant(tenant, async () => {
        const device = await inject(DeviceService).register({serialNumber: `SVC-${Math.random().toString(36).slice(2, 8)}`});
        const rule = await inject(AlertRuleService).create(device.id, {condition: AlertCondition.ABOVE, thresholdCelsius: 30});
        const reading = {temperatureCelsius: 35, humidity: null, batteryLevel: null, recordedAt: new Date(Date.now() - 60_000)};
        const {alerts} = await inject(ReadingService).ingest({tenantId: tenant, deviceId: device.id, readings: [reading], single: true});
        expect(alerts).toHaveLength(1);
        return {deviceId: device.id, ruleId: rule.id};
      });
    }
    const openAlerts = (tenant: string, deviceId: string) =>
      asTenant(tenant, () => inject(AlertService).listForDevice(deviceId, {open: true}));

    it("ends the open episode when the rule is disabled, and when its condition flips", async () => {
      const tenant = newTenant("svc_rule");
      for (const change of [{isEnabled: false}, {condition: AlertCondition.BELOW}]) {
        const {deviceId, ruleId} = await openEpisode(tenant);
        const before = Date.now();
        await asTenant(tenant, () => inject(AlertRuleService).update(ruleId, change));
        const all = await asTenant(tenant, () => inject(AlertService).listForDevice(deviceId, {}));
        expect(all, JSON.stringify(change)).toHaveLength(1);
        expect(all[0]!.resolvedAt!.getTime()).toBeGreaterThanOrEqual(before - 1_000);
        expect(await openAlerts(tenant, deviceId)).toHaveLength(0);
      }
    });

    it("keeps the episode open when only the threshold changes", async () => {
      const tenant = newTenant("svc_threshold");
      const {deviceId, ruleId} = await openEpisode(tenant);
      const updated = await asTenant(tenant, () => inject(AlertRuleService).update(ruleId, {thresholdCelsius: 32}));
      expect(updated.thresholdCelsius).toBe(32);
      expect(await openAlerts(tenant, deviceId)).toHaveLength(1);
    });
  });

  describe("DailyStatsRecomputeJobsService.status", () => {
    it("maps BullMQ's job states onto the API's, and keeps jobs to their tenant", async () => {
      const tenant = newTenant("svc_jobs");
      const queue = inject<Queue>(getQueueToken(AGGREGATION_QUEUE));
      const aggregations = inject(DailyStatsRecomputeJobsService);
      const data = {tenantId: tenant, date: "2026-03-10", trigger: "manual"};
      // No worker runs in this spec, so each job stays in the state it was added in.
      const waiting = await queue.add(AGGREGATION_JOBS.tenant, data, {jobId: `svc.${tenant}.waiting`});
      const prioritized = await queue.add(AGGREGATION_JOBS.tenant, data, {jobId: `svc.${tenant}.prioritized`, priority: 5});
      const delayed = await queue.add(AGGREGATION_JOBS.tenant, data, {jobId: `svc.${tenant}.delayed`, delay: 3_600_000});
      try {
        expect(await aggregations.status(tenant, waiting.id!)).toMatchObject({
          jobId: waiting.id,
          tenantId: tenant,
          date: "2026-03-10",
          state: "waiting",
          progress: 0,
          finishedAt: null
        });
        expect((await aggregations.status(tenant, prioritized.id!)).state).toBe("waiting");
        expect((await aggregations.status(tenant, delayed.id!)).state).toBe("delayed");
        await expect(aggregations.status(newTenant("svc_other"), waiting.id!)).rejects.toMatchObject({status: 404});
        await expect(aggregations.status(tenant, "svc.no-such-job")).rejects.toMatchObject({status: 404});
      } finally {
        await Promise.all([waiting, prioritized, delayed].map((job) => job.remove()));
      }
    });
  });
});
