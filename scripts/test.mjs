#!/usr/bin/env node
/**
 * `npm test` (and `npm run test:faults` with --faults): runs vitest on the real Postgres and
 * Redis, then prints a plain `N passed, N failed` line from vitest's JSON report (CI reads that
 * line, not vitest's own summary). Exits with vitest's status.
 */
import {spawnSync} from "node:child_process";
import {existsSync, readFileSync, rmSync} from "node:fs";
import {join} from "node:path";

const root = new URL("..", import.meta.url).pathname;
const faults = process.argv.includes("--faults");
const extra = process.argv.slice(2).filter((arg) => arg !== "--faults");
const report = join(root, faults ? ".vitest-results-faults.json" : ".vitest-results.json");
rmSync(report, {force: true});

const args = ["vitest", "run", ...(faults ? ["--config", "vitest.faults.config.ts"] : []), "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...extra];
const run = spawnSync("npx", args, {cwd: root, stdio: "inherit", env: {...process.env, FORCE_COLOR: process.env.CI ? "0" : process.env.FORCE_COLOR}});

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const results = JSON.parse(readFileSync(report, "utf8"));
  passed = results.numPassedTests ?? 0;
  failed = (results.numFailedTests ?? 0) + (results.numFailedTestSuites ?? 0);
  skipped = (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
} else {
  failed = 1;
}
const status = run.status ?? 1;
if (status !== 0 && failed === 0) failed = 1; // vitest failed outside any test (setup, config)
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(status);
