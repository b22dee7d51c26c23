#!/usr/bin/env node
// @ts-check
/**
 * `npm test` (and `npm run test:faults` with --faults):
 * 1. `npm run check` (the type check, and whatever else `check` runs); if it fails, no test runs.
 * 2. vitest on the real Postgres and Redis, with `--allowOnly=false`: a stray `.only` fails the
 *    run instead of quietly skipping every other test (vitest allows it unless CI is set).
 * 3. One plain `N passed, N failed[, N skipped]` line from vitest's JSON report (CI reads that
 *    line, not vitest's summary), written to a summary file for .ci/run as well. Counted as a
 *    failure: a failed check, a missing, truncated or inconsistent report, a non-zero vitest exit
 *    without a failed test (setup, config, an unhandled error) and, in CI (a truthy CI, or
 *    SMART_THERMO_CI=1, which .ci/run sets whatever CI it inherits), every skipped test in a file
 *    that did not fail. The rules are vitest-report.mjs's `judgeRun` (test/ci/vitest-report.spec.ts). The suite has no legitimate skip: a test that cannot run
 *    somewhere must fail and say what is missing (as the Swagger UI check does without Chromium),
 *    so a skip is a test someone switched off. Outside CI a skip is reported, not failed, so a
 *    developer can skip while working.
 * Exits non-zero when anything failed.
 */
import {spawnSync} from "node:child_process";
import {rmSync, writeFileSync} from "node:fs";
import {join} from "node:path";
import {judgeRun, readReport, skipsFail, summaryLine} from "./vitest-report.mjs";

const root = new URL("..", import.meta.url).pathname;
const faults = process.argv.includes("--faults");
const extra = process.argv.slice(2).filter((arg) => arg !== "--faults");
const report = join(root, faults ? ".vitest-results-faults.json" : ".vitest-results.json");
const summaryFile = join(root, faults ? ".vitest-results-faults.summary.json" : ".vitest-results.summary.json");
const ci = skipsFail(process.env);
rmSync(report, {force: true});
rmSync(summaryFile, {force: true});

const check = spawnSync("npm", ["run", "--silent", "check"], {cwd: root, stdio: "inherit"});
let outcome;
if (check.status !== 0) {
  outcome = judgeRun({checkStatus: check.status, ci});
} else {
  const args = [
    "vitest",
    "run",
    ...(faults ? ["--config", "vitest.faults.config.ts"] : []),
    "--allowOnly=false",
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${report}`,
    ...extra
  ];
  const run = spawnSync("npx", args, {cwd: root, stdio: "inherit", env: {...process.env, FORCE_COLOR: ci ? "0" : process.env.FORCE_COLOR}});
  outcome = judgeRun({checkStatus: 0, vitestStatus: run.status, report: readReport(report), ci});
}
const {counts, notes, exitCode} = outcome;

writeFileSync(summaryFile, `${JSON.stringify({...counts, exitCode})}\n`);
console.log("");
for (const note of notes) console.log(`[test] ${note}`);
console.log(summaryLine(counts));
process.exit(exitCode);
