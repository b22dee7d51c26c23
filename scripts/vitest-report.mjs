#!/usr/bin/env node
/**
 * Counts passed and failed tests in vitest JSON reports. Used by scripts/test.mjs (one report)
 * and .ci/run (both reports), which print CI's plain `N passed, N failed` line from it.
 *
 * vitest's `numFailedTestSuites` counts every failing describe block as well as the file, so it
 * cannot simply be added to `numFailedTests`: a file counts as one extra failure only when it
 * failed outside any test (an import error, a failing beforeAll).
 *
 *   node scripts/vitest-report.mjs <report.json>...   prints `N passed, N failed[, N skipped]`
 */
import {existsSync, readFileSync} from "node:fs";
import {pathToFileURL} from "node:url";

/** @returns {{passed: number, failed: number, skipped: number, found: boolean}} */
export function countResults(reportPath) {
  if (!existsSync(reportPath)) return {passed: 0, failed: 0, skipped: 0, found: false};
  const report = JSON.parse(readFileSync(reportPath, "utf8"));
  const failedOutsideTests = (report.testResults ?? []).filter(
    (file) => file.status === "failed" && !(file.assertionResults ?? []).some((test) => test.status === "failed")
  ).length;
  return {
    passed: report.numPassedTests ?? 0,
    failed: (report.numFailedTests ?? 0) + failedOutsideTests,
    skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
    found: true
  };
}

export function summaryLine({passed, failed, skipped}) {
  return `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const total = {passed: 0, failed: 0, skipped: 0};
  for (const path of process.argv.slice(2)) {
    const counts = countResults(path);
    total.passed += counts.passed;
    total.failed += counts.failed;
    total.skipped += counts.skipped;
  }
  console.log(summaryLine(total));
}
