#!/usr/bin/env node
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
 * Counts of one vitest JSON report. `problem` says why the report cannot be trusted (missing,
 * truncated, not vitest's); the caller counts that as a failure. `unexpectedSkips` are skipped or
 * todo tests in files that did not fail (a failing beforeAll skips its tests: that failure is
 * counted already).
 *
 * @returns {{passed: number, failed: number, skipped: number, unexpectedSkips: string[], problem?: string}}
 */
export function readReport(reportPath) {
  const empty = {passed: 0, failed: 0, skipped: 0, unexpectedSkips: []};
  if (!existsSync(reportPath)) return {...empty, problem: `${reportPath} is missing`};
  let report;
  try {
    report = JSON.parse(readFileSync(reportPath, "utf8"));
  } catch (error) {
    return {...empty, problem: `${reportPath} is not valid JSON (truncated?): ${error.message}`};
  }
  if (!Array.isArray(report?.testResults) || typeof report.numTotalTests !== "number") {
    return {...empty, problem: `${reportPath} is not a vitest JSON report`};
  }
  const files = report.testResults;
  const tests = files.flatMap((file) => file.assertionResults ?? []);
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

export function summaryLine({passed, failed, skipped}) {
  return `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const total = {passed: 0, failed: 0, skipped: 0};
  for (const path of process.argv.slice(2)) {
    let summary;
    try {
      summary = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      console.error(
        `[report] ${path}: ${error.code === "ENOENT" ? "missing" : `unreadable (${error.message})`}: the run that writes it did not finish; counted as a failure`
      );
      total.failed += 1;
      continue;
    }
    total.passed += summary.passed ?? 0;
    total.failed += summary.failed ?? 0;
    total.skipped += summary.skipped ?? 0;
    if (summary.exitCode !== 0 && !(summary.failed > 0)) total.failed += 1;
  }
  console.log(summaryLine(total));
  process.exit(total.failed > 0 ? 1 : 0);
}
