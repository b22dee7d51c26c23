#!/usr/bin/env node
/**
 * `npm test` (and `npm run test:faults` with --faults):
 * 1. `npm run check` (the type check, and whatever else `check` runs); if it fails, no test runs.
 * 2. vitest on the real Postgres and Redis, with `--allowOnly=false`: a stray `.only` fails the
 *    run instead of quietly skipping every other test (vitest allows it unless CI is set).
 * 3. One plain `N passed, N failed[, N skipped]` line from vitest's JSON report (CI reads that
 *    line, not vitest's summary), written to a summary file for .ci/run as well. Counted as a
 *    failure: a failed check, a missing, truncated or inconsistent report, a non-zero vitest exit
 *    without a failed test (setup, config, an unhandled error) and, when CI is set, every skipped
 *    test in a file that did not fail. The suite has no legitimate skip: a test that cannot run
 *    somewhere must fail and say what is missing (as the Swagger UI check does without Chromium),
 *    so a skip is a test someone switched off. Outside CI a skip is reported, not failed, so a
 *    developer can skip while working.
 * Exits non-zero when anything failed.
 */
import {spawnSync} from "node:child_process";
import {rmSync, writeFileSync} from "node:fs";
import {join} from "node:path";
import {readReport, summaryLine} from "./vitest-report.mjs";

const root = new URL("..", import.meta.url).pathname;
const faults = process.argv.includes("--faults");
const extra = process.argv.slice(2).filter((arg) => arg !== "--faults");
const report = join(root, faults ? ".vitest-results-faults.json" : ".vitest-results.json");
const summaryFile = join(root, faults ? ".vitest-results-faults.summary.json" : ".vitest-results.summary.json");
const ci = /^(1|true|yes)$/i.test(process.env.CI ?? "");
rmSync(report, {force: true});
rmSync(summaryFile, {force: true});

const counts = {passed: 0, failed: 0, skipped: 0};
const notes = [];
let exitCode = 0;

const check = spawnSync("npm", ["run", "--silent", "check"], {cwd: root, stdio: "inherit"});
if (check.status !== 0) {
  notes.push(`npm run check failed (exit ${check.status ?? check.signal}): no test was run; counted as a failure`);
  counts.failed = 1;
  exitCode = check.status || 1;
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
  exitCode = run.status ?? 1;

  const result = readReport(report);
  Object.assign(counts, {passed: result.passed, failed: result.failed, skipped: result.skipped});
  if (result.problem) {
    notes.push(`vitest report: ${result.problem}; counted as a failure`);
    counts.failed += 1;
  }
  if (exitCode !== 0 && counts.failed === 0) {
    notes.push(
      `vitest exited with ${run.status ?? run.signal} but no test failed (an error outside the tests: setup, config, an unhandled error); counted as a failure`
    );
    counts.failed = 1;
  }
  if (result.unexpectedSkips.length > 0) {
    const list = result.unexpectedSkips.map((name) => `\n  - ${name}`).join("");
    if (ci) {
      notes.push(
        `${result.unexpectedSkips.length} skipped test(s) counted as failed: CI allows no skipped test (one that cannot run here must fail and say why):${list}`
      );
      counts.failed += result.unexpectedSkips.length;
    } else {
      notes.push(`warning: ${result.unexpectedSkips.length} skipped test(s); CI counts them as failed:${list}`);
    }
  }
  if (counts.failed > 0 && exitCode === 0) exitCode = 1;
}

writeFileSync(summaryFile, `${JSON.stringify({...counts, exitCode})}\n`);
console.log("");
for (const note of notes) console.log(`[test] ${note}`);
console.log(summaryLine(counts));
process.exit(exitCode);
