#!/usr/bin/env node
/**
 * `npm test` (and `npm run test:faults` with --faults): runs vitest on the real Postgres and
 * Redis, then prints a plain `N passed, N failed` line from vitest's JSON report (CI reads that
 * line, not vitest's own summary). Exits with vitest's status.
 */
import {spawnSync} from "node:child_process";
import {rmSync} from "node:fs";
import {join} from "node:path";
import {countResults, summaryLine} from "./vitest-report.mjs";

const root = new URL("..", import.meta.url).pathname;
const faults = process.argv.includes("--faults");
const extra = process.argv.slice(2).filter((arg) => arg !== "--faults");
const report = join(root, faults ? ".vitest-results-faults.json" : ".vitest-results.json");
rmSync(report, {force: true});

const args = ["vitest", "run", ...(faults ? ["--config", "vitest.faults.config.ts"] : []), "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...extra];
const run = spawnSync("npx", args, {cwd: root, stdio: "inherit", env: {...process.env, FORCE_COLOR: process.env.CI ? "0" : process.env.FORCE_COLOR}});

const counts = countResults(report);
if (!counts.found) counts.failed = 1;
const status = run.status ?? 1;
if (status !== 0 && counts.failed === 0) counts.failed = 1; // vitest failed outside any file (setup, config)
console.log(`\n${summaryLine(counts)}`);
process.exit(status);
