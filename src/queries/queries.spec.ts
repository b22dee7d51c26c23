import {knex} from "@mikro-orm/postgresql";
import pgDriver from "pg";
import {describe, expect, it} from "vitest";
import {
  endEpisodesSql,
  episodesEndingAfterSql,
  insertAlertsSql,
  lockRulesSql,
  refreshingRuleStateSql,
  refreshRuleStateSql,
  resolveAlertsSql,
  retractAlertsSql,
  rewriteAlertsSql
} from "../modules/alerts/alert.repository.js";
import {backtestArrivalsSql, backtestReadingsSql} from "../modules/alerts/alert-backtest.repository.js";
import {ExportFormat} from "../modules/readings/reading-export.models.js";
import {exportCopySql} from "../modules/readings/reading-export.repository.js";
import {historySql, latestSql} from "../modules/readings/reading-history.repository.js";
import {usersChangedSinceSql} from "../modules/users/caller-users.js";
import {ingestSql, readingsSinceSql, runStartSql} from "../modules/readings/reading.repository.js";
import {deviceKeyLookupSql, revokedSinceSql} from "../platform/device-auth/device-key-verifier.js";
import {lockDaySql, mergeDailyStatsSql, replaceDailyStatsSql} from "../modules/stats/daily-stats.repository.js";
import {hourlySql, tenantDaySql} from "../modules/stats/day-totals.repository.js";
import {toNativeSql} from "../platform/db/sql.js";

/**
 * The hot statements exactly as Postgres receives them, committed next to this spec (one .sql file
 * each, like immich's src/queries/): a change to a statement shows in review as a diff of its
 * final SQL. After changing one on purpose, regenerate with `npx vitest run src/queries -u` and
 * commit the files; CI never writes them, so a forgotten update fails.
 */
const SCHEMA = `"tenant_a"`;
const EXPORT_RANGE = {from: new Date("2026-03-01T00:00:00Z"), to: new Date("2026-04-01T00:00:00Z")};
const pg = knex({client: "pg"});

/** The ingest statement's bindings, the same for both of its texts (ingestBindings). */
const INGEST_BINDINGS = [
  "tenantId",
  "onlyWithoutAlertChange",
  "deviceIds",
  "deviceIndexes",
  "temperatures",
  "humidities",
  "batteryLevels",
  "instants"
];

const statements: {file: string; owner: string; sql: string; bindings: string[]}[] = [
  {
    file: "readings.ingest",
    owner: "ReadingRepository.ingest",
    sql: ingestSql(SCHEMA, {withEpisodeState: true}),
    bindings: INGEST_BINDINGS
  },
  {
    file: "readings.ingest-autocommitted",
    owner: "ReadingRepository.ingest (ReadingWriter.together)",
    sql: ingestSql(SCHEMA, {withEpisodeState: false}),
    bindings: INGEST_BINDINGS
  },
  {
    file: "readings.ingest-fresh",
    owner: "ReadingRepository.ingest (ReadingWriter.together, readings expected to be new)",
    sql: ingestSql(SCHEMA, {withEpisodeState: false, fresh: true}),
    bindings: INGEST_BINDINGS
  },
  {file: "device-keys.lookup", owner: "DeviceKeyVerifier.load", sql: deviceKeyLookupSql, bindings: ["keyId"]},
  {file: "device-keys.revoked-since", owner: "DeviceKeyVerifier's ChangeFeed.poll", sql: revokedSinceSql, bindings: ["since"]},
  {file: "users.changed-since", owner: "CallerUsers' ChangeFeed.poll", sql: usersChangedSinceSql, bindings: ["since"]},
  {
    file: "readings.history-first-page",
    owner: "ReadingHistoryRepository.page",
    sql: historySql(SCHEMA, {deviceId: "", limit: 51}),
    bindings: ["deviceId", "limit"]
  },
  {
    file: "readings.latest",
    owner: "ReadingHistoryRepository.latest",
    sql: latestSql(SCHEMA, {deviceId: "", from: new Date(0), to: new Date(0), limit: 1}),
    bindings: ["deviceId", "from", "to", "limit"]
  },
  {
    file: "readings.history-next-page-filtered",
    owner: "ReadingHistoryRepository.page",
    sql: historySql(SCHEMA, {deviceId: "", before: "", from: new Date(0), to: new Date(0), minTemp: 0, limit: 51}),
    bindings: ["deviceId", "before", "from", "to", "minTemp", "limit"]
  },
  {file: "readings.since", owner: "ReadingRepository.since", sql: readingsSinceSql(SCHEMA), bindings: ["deviceId", "from"]},
  {file: "alerts.lock-rules", owner: "AlertRepository.lockRules", sql: lockRulesSql(SCHEMA), bindings: ["deviceId"]},
  {
    file: "alerts.episodes-ending-after",
    owner: "AlertRepository.episodesEndingAfter",
    sql: episodesEndingAfterSql(SCHEMA),
    bindings: ["ruleIds", "after"]
  },
  {file: "alerts.retract", owner: "AlertRepository.write", sql: retractAlertsSql(SCHEMA), bindings: ["ids"]},
  {file: "alerts.resolve", owner: "AlertRepository.write", sql: resolveAlertsSql(SCHEMA), bindings: ["ids", "resolvedAts"]},
  {
    file: "readings.run-start",
    owner: "ReadingRepository.runStart",
    sql: runStartSql(SCHEMA),
    bindings: ["deviceId", "before", "notBefore", "condition", "threshold"]
  },
  {
    file: "alerts.rewrite",
    owner: "AlertRepository.write",
    sql: rewriteAlertsSql(SCHEMA),
    bindings: ["ids", "readingIds", "temperatures", "breachStartedAts", "firedAts", "lastReadingAts", "peaks", "counts", "resolvedAts"]
  },
  {
    file: "alerts.insert",
    owner: "AlertRepository.write",
    sql: insertAlertsSql(SCHEMA),
    bindings: [
      "deviceId",
      "ruleIds",
      "readingIds",
      "temperatures",
      "breachStartedAts",
      "firedAts",
      "lastReadingAts",
      "peaks",
      "counts",
      "resolvedAts",
      "acknowledgedAts",
      "acknowledgedByIds",
      "acknowledgementComments"
    ]
  },
  {file: "alerts.refresh-rule-state", owner: "AlertRepository.write", sql: refreshRuleStateSql(SCHEMA), bindings: ["ruleIds"]},
  {
    file: "alerts.rewrite-refreshing-rules",
    owner: "AlertRepository.write (its last write)",
    sql: refreshingRuleStateSql(SCHEMA, rewriteAlertsSql(SCHEMA)),
    bindings: [
      "ids",
      "readingIds",
      "temperatures",
      "breachStartedAts",
      "firedAts",
      "lastReadingAts",
      "peaks",
      "counts",
      "resolvedAts",
      "touchedRuleIds"
    ]
  },
  {file: "alerts.end-episodes", owner: "AlertRepository.endEpisodes", sql: endEpisodesSql(SCHEMA), bindings: ["at", "ruleId", "restart"]},
  {
    file: "alerts.backtest-readings",
    owner: "AlertBacktestRepository.readings",
    sql: backtestReadingsSql(SCHEMA),
    bindings: ["deviceId", "from", "to"]
  },
  {
    file: "alerts.backtest-arrivals",
    owner: "AlertBacktestRepository.arrivals",
    sql: backtestArrivalsSql(SCHEMA),
    bindings: ["deviceId", "recordedFrom", "recordedTo", "arrivedFrom", "arrivedTo"]
  },
  {file: "stats.daily-stats-merge", owner: "DailyStatsRepository.merge", sql: mergeDailyStatsSql, bindings: ["groups"]},
  {file: "stats.daily-stats-lock-day", owner: "DailyStatsRepository.withDayLocked", sql: lockDaySql, bindings: ["tenantId", "day"]},
  {
    file: "stats.daily-stats-replace",
    owner: "DailyStatsRepository.replace",
    sql: replaceDailyStatsSql,
    bindings: ["tenantId", "rows", "snapshot"]
  },
  {file: "stats.tenant-day", owner: "DayTotalsRepository.forDay", sql: tenantDaySql(SCHEMA), bindings: ["day", "timezone"]},
  {file: "stats.hourly", owner: "DayTotalsRepository.hourly", sql: hourlySql(SCHEMA), bindings: ["deviceId", "hours", "timezone"]},
  // COPY takes no parameters: the export's values are literals (escaped by pg), shown here with sample values.
  {
    file: "readings.export-csv",
    owner: "ReadingExportRepository.open",
    sql: exportCopySql(SCHEMA, ExportFormat.CSV, EXPORT_RANGE, pgDriver.escapeLiteral),
    bindings: []
  },
  {
    file: "readings.export-ndjson-device",
    owner: "ReadingExportRepository.open",
    sql: exportCopySql(
      SCHEMA,
      ExportFormat.NDJSON,
      {...EXPORT_RANGE, deviceId: "00000000-0000-4000-8000-000000000000"},
      pgDriver.escapeLiteral
    ),
    bindings: []
  }
];

describe("hot SQL statements", () => {
  it.each(statements)("$file is the committed SQL", async ({file, owner, sql, bindings}) => {
    // Each binding's value is its own name, so the positional parameters list their names in order.
    const native = toNativeSql(pg, sql, Object.fromEntries(bindings.map((name) => [name, name])));
    const parameters = native.values.map((name, index) => `$${index + 1} ${String(name)}`).join(", ");
    expect(new Set(native.values), "every declared binding is used").toEqual(new Set(bindings));
    await expect(`-- ${owner}\n-- ${parameters}\n${native.sql}\n`).toMatchFileSnapshot(`./${file}.sql`);
  });
});
