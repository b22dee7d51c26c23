/**
 * npm run stats:verify -- --tenant building_a [--from 2026-03-01] [--to 2026-03-31]
 * Compares every DailyStats row of the tenant (in the range, local days, both inclusive) with an
 * aggregation of its raw readings from scratch. Prints each difference and exits 1 when there is
 * one, 0 when every row is right, 2 on a usage error.
 */
import {parseArgs} from "node:util";
import {inject} from "@tsed/common";
import {startHeadless} from "../bootstrap.js";
import {loadConfig} from "../config/app-config.js";
import {DailyStatsVerifyService} from "../modules/stats/daily-stats-verify.service.js";
import {isValidTenantId} from "../platform/tenancy/tenant-id.js";
import {isStrictDate} from "../platform/validation/strict-formats.js";

const {values} = parseArgs({options: {tenant: {type: "string"}, from: {type: "string"}, to: {type: "string"}}});
const dates = [values.from, values.to].filter((d) => d !== undefined);
if (!isValidTenantId(values.tenant) || dates.some((d) => !isStrictDate(d)) || (values.from && values.to && values.from > values.to)) {
  console.error("usage: npm run stats:verify -- --tenant <tenant_id> [--from YYYY-MM-DD] [--to YYYY-MM-DD]");
  process.exit(2);
}

const platform = await startHeadless({...loadConfig({developmentWhenUnset: true}), runWorkers: false}, {logger: {level: "warn"}});
let status = 0;
try {
  const differences = await inject(DailyStatsVerifyService).verify(values.tenant, values.from ?? null, values.to ?? null);
  const show = (totals: (typeof differences)[number]["stored"]) =>
    totals
      ? `count ${totals.readingCount}, avg ${totals.avgTemperatureCelsius}, min ${totals.minTemperatureCelsius}, max ${totals.maxTemperatureCelsius}`
      : "no row";
  for (const d of differences)
    console.log(`${d.date} device ${d.deviceId}: stored ${show(d.stored)}; readings say ${d.expected ? show(d.expected) : "no reading"}`);
  console.log(
    differences.length
      ? `${differences.length} difference(s) in tenant ${values.tenant}`
      : `DailyStats of tenant ${values.tenant} match the raw readings`
  );
  status = differences.length ? 1 : 0;
} catch (error) {
  console.error("stats:verify failed:", error instanceof Error ? error.message : error);
  status = 2;
} finally {
  await platform.stop();
  // Exit rather than wait: @tsed/bullmq leaves its queue's Redis connection open (see cli/seed.ts).
  process.exit(status);
}
