#!/usr/bin/env node
// @ts-check
/**
 * The plain `N passed, N failed[, N skipped]` line that CI reads (it does not understand vitest's
 * own summary). scripts/test.mjs counts one vitest JSON report with `readReport` and writes its
 * final counts to a summary file; .ci/run adds the summary files of `npm test` and
 * `npm run test:faults` with this script's command line:
 *
 *   node scripts/vitest-report.mjs <summary.json>...   prints the combined line; exits 1 when
 *                                                      anything failed or a summary is missing
 *
 * vitest's `numFailedTestSuites` counts every failing describe block as well as the file, so it
 * cannot simply be added to `numFailedTests`: a file counts as one extra failure only when it
 * failed outside any test (an import error, a failing beforeAll).
 */
import {existsSync, readFileSync} from "node:fs";
import {pathToFileURL} from "node:url";

/**
 * @typedef {{status: string, fullName: string}} VitestTestResult
 * @typedef {{name: string, status: string, assertionResults?: VitestTestResult[]}} VitestFileResult
 * @typedef {{numTotalTests: number, testResults: VitestFileResult[]}} VitestJsonReport
 * @typedef {{passed: number, failed: number, skipped: number, unexpectedSkips: string[], problem?: string}} ReportCounts
 */

/**
 * Whether a skipped test fails the run. .ci/run sets SMART_THERMO_CI=1 whatever it inherits: a
 * CI=0 or CI=false in the environment of a CI job must not switch the rule off. Any other caller
 * gets it from a truthy CI.
 * @param {Record<string, string | undefined>} env
 */
export function skipsFail(env) {
  return env.SMART_THERMO_CI === "1" || /^(1|true|yes)$/i.test(env.CI ?? "");
}

/**
 * What one run counts, from `npm run check`'s status, vitest's exit status and its report: the
 * counts, the notes to print, and the exit code. Counted as failures: a failed check (no test
 * runs then), a report that cannot be trusted, a non-zero vitest exit without a failed test, and
 * with `ci`, every skipped test in a file that did not fail.
 * @param {{checkStatus: number | null, vitestStatus?: number | null, report?: ReportCounts, ci: boolean}} run
 * @returns {{counts: {passed: number, failed: number, skipped: number}, notes: string[], exitCode: number}}
 */
export function judgeRun({checkStatus, vitestStatus = null, report, ci}) {
  const counts = {passed: 0, failed: 0, skipped: 0};
  /** @type {string[]} */
  const notes = [];
  if (checkStatus !== 0 || !report) {
    notes.push(`npm run check failed (exit ${checkStatus}): no test was run; counted as a failure`);
    return {counts: {...counts, failed: 1}, notes, exitCode: checkStatus || 1};
  }
  let exitCode = vitestStatus ?? 1;
  Object.assign(counts, {passed: report.passed, failed: report.failed, skipped: report.skipped});
  if (report.problem) {
    notes.push(`vitest report: ${report.problem}; counted as a failure`);
    counts.failed += 1;
  }
  if (exitCode !== 0 && counts.failed === 0) {
    notes.push(
      `vitest exited with ${vitestStatus} but no test failed (an error outside the tests: setup, config, an unhandled error); counted as a failure`
    );
    counts.failed = 1;
  }
  if (report.unexpectedSkips.length > 0) {
    const list = report.unexpectedSkips.map((name) => `\n  - ${name}`).join("");
    if (ci) {
      notes.push(
        `${report.unexpectedSkips.length} skipped test(s) counted as failed: CI allows no skipped test (one that cannot run here must fail and say why):${list}`
      );
      counts.failed += report.unexpectedSkips.length;
    } else {
      notes.push(`warning: ${report.unexpectedSkips.length} skipped test(s); CI counts them as failed:${list}`);
    }
  }
  if (counts.failed > 0 && exitCode === 0) exitCode = 1;
  return {counts, notes, exitCode};
}

/**
 * Counts of one vitest JSON report. `problem` says why the report cannot be trusted (missing,
 * truncated, not vitest's); the caller counts that as a failure. `unexpectedSkips` are skipped or
 * todo tests in files that did not fail (a failing beforeAll skips its tests: that failure is
 * counted already).
 *
 * @param {string} reportPath
 * @returns {ReportCounts}
 */
export function readReport(reportPath) {
  /** @type {ReportCounts} */
  const empty = {passed: 0, failed: 0, skipped: 0, unexpectedSkips: []};
  if (!existsSync(reportPath)) return {...empty, problem: `${reportPath} is missing`};
  /** @type {VitestJsonReport} */
  let report;
  try {
    report = JSON.parse(readFileSync(reportPath, "utf8"));
  } catch (error) {
    return {...empty, problem: `${reportPath} is not valid JSON (truncated?): ${/** @type {Error} */ (error).message}`};
  }
  if (!Array.isArray(report?.testResults) || typeof report.numTotalTests !== "number") {
    return {...empty, problem: `${reportPath} is not a vitest JSON report`};
  }
  if (report.numTotalTests === 0) return {...empty, problem: `${reportPath} counts no test at all (nothing ran)`};
  const files = report.testResults;
  const tests = files.flatMap((file) => file.assertionResults ?? []);
  /** @param {...string} statuses */
  const count = (...statuses) => tests.filter((test) => statuses.includes(test.status)).length;
  const failedOutsideTests = files.filter(
    (file) => file.status === "failed" && !(file.assertionResults ?? []).some((test) => test.status === "failed")
  ).length;
  const unexpectedSkips = files
    .filter((file) => file.status !== "failed")
    .flatMap((file) =>
      (file.assertionResults ?? [])
        .filter((test) => ["skipped", "pending", "todo"].includes(test.status))
        .map((test) => `${file.name}: ${test.fullName}`)
    );
  const counts = {
    passed: count("passed"),
    failed: count("failed") + failedOutsideTests,
    skipped: count("skipped", "pending", "todo"),
    unexpectedSkips
  };
  if (counts.passed + count("failed") + counts.skipped !== report.numTotalTests) {
    return {...counts, problem: `${reportPath} lists ${tests.length} test results for ${report.numTotalTests} tests`};
  }
  return counts;
}

/** @param {{passed: number, failed: number, skipped: number}} counts */
export function summaryLine({passed, failed, skipped}) {
  return `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const total = {passed: 0, failed: 0, skipped: 0};
  for (const path of process.argv.slice(2)) {
    /** @type {{passed?: number, failed?: number, skipped?: number, exitCode?: number}} */
    let summary;
    try {
      summary = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      const {code, message} = /** @type {NodeJS.ErrnoException} */ (error);
      console.error(
        `[report] ${path}: ${code === "ENOENT" ? "missing" : `unreadable (${message})`}: the run that writes it did not finish; counted as a failure`
      );
      total.failed += 1;
      continue;
    }
    total.passed += summary.passed ?? 0;
    total.failed += summary.failed ?? 0;
    total.skipped += summary.skipped ?? 0;
    if (summary.exitCode !== 0 && !((summary.failed ?? 0) > 0)) total.failed += 1;
  }
  console.log(summaryLine(total));
  process.exit(total.failed > 0 ? 1 : 0);
}
