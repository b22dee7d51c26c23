import {execFileSync, spawnSync} from "node:child_process";
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {afterAll, describe, expect, it} from "vitest";
import {judgeRun, readReport, skipsFail} from "../../scripts/vitest-report.mjs";

const ROOT = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "vitest-report-"));
let files = 0;
const write = (content: string) => {
  const path = join(dir, `report-${++files}.json`);
  writeFileSync(path, content);
  return path;
};
const test = (fullName: string, status: string) => ({fullName, status});
/** A vitest JSON report as `--reporter=json` writes it (the fields the reader uses). */
const report = (fileResults: {name: string; status: string; assertionResults: {fullName: string; status: string}[]}[]) =>
  JSON.stringify({
    numTotalTests: fileResults.reduce((n, file) => n + file.assertionResults.length, 0),
    testResults: fileResults
  });

/**
 * scripts/vitest-report.mjs: how `npm test` and .ci/run count a run. Everything that means "not
 * everything ran and passed" must come out as a failure, so CI cannot go green on it.
 */
describe("the CI report reader (scripts/vitest-report.mjs)", () => {
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it("counts a skipped test in a passing file: a failure in CI, a warning elsewhere", () => {
    const counted = readReport(
      write(report([{name: "a.spec.ts", status: "passed", assertionResults: [test("a works", "passed"), test("a skipped", "skipped")]}]))
    );
    expect(counted).toEqual({passed: 1, failed: 0, skipped: 1, unexpectedSkips: ["a.spec.ts: a skipped"]});
    const inCi = judgeRun({checkStatus: 0, vitestStatus: 0, report: counted, ci: true});
    expect(inCi).toMatchObject({counts: {passed: 1, failed: 1, skipped: 1}, exitCode: 1});
    expect(inCi.notes.join()).toContain("a.spec.ts: a skipped");
    const locally = judgeRun({checkStatus: 0, vitestStatus: 0, report: counted, ci: false});
    expect(locally).toMatchObject({counts: {passed: 1, failed: 0, skipped: 1}, exitCode: 0});
    expect(locally.notes.join()).toMatch(/^warning: 1 skipped/);
  });

  it("does not count twice the tests a failing file skipped (its failure is counted already)", () => {
    const counted = readReport(write(report([{name: "b.spec.ts", status: "failed", assertionResults: [test("b skipped", "skipped")]}])));
    expect(counted).toEqual({passed: 0, failed: 1, skipped: 1, unexpectedSkips: []});
    expect(judgeRun({checkStatus: 0, vitestStatus: 1, report: counted, ci: true})).toMatchObject({counts: {failed: 1}, exitCode: 1});
  });

  it("fails a run whose report is missing, truncated, inconsistent or counts no test, whatever vitest's exit status", () => {
    const whole = report([{name: "c.spec.ts", status: "passed", assertionResults: [test("c works", "passed")]}]);
    const cases = {
      missing: join(dir, "never-written.json"),
      truncated: write(whole.slice(0, whole.length / 2)),
      inconsistent: write(whole.replace('"numTotalTests":1', '"numTotalTests":2')),
      "zero tests": write(report([])),
      "not vitest's": write(JSON.stringify({results: []}))
    };
    const problems = Object.fromEntries(Object.entries(cases).map(([name, path]) => [name, readReport(path).problem]));
    expect(problems).toEqual({
      missing: expect.stringContaining("is missing"),
      truncated: expect.stringContaining("not valid JSON (truncated?)"),
      inconsistent: expect.stringContaining("lists 1 test results for 2 tests"),
      "zero tests": expect.stringContaining("counts no test at all"),
      "not vitest's": expect.stringContaining("is not a vitest JSON report")
    });
    for (const [name, path] of Object.entries(cases)) {
      const judged = judgeRun({checkStatus: 0, vitestStatus: 0, report: readReport(path), ci: false});
      expect(judged.exitCode, name).toBe(1);
      expect(judged.counts.failed, name).toBeGreaterThan(0);
    }
  });

  it("fails a run that vitest ended non-zero without a failed test, and one whose check failed", () => {
    const counted = readReport(write(report([{name: "d.spec.ts", status: "passed", assertionResults: [test("d works", "passed")]}])));
    expect(judgeRun({checkStatus: 0, vitestStatus: 1, report: counted, ci: false})).toMatchObject({
      counts: {passed: 1, failed: 1},
      exitCode: 1
    });
    expect(judgeRun({checkStatus: 2, ci: false})).toMatchObject({counts: {passed: 0, failed: 1}, exitCode: 2});
  });

  it("treats skips as failures under .ci/run even when the job inherits CI=0 or CI=false", () => {
    expect(skipsFail({CI: "true"})).toBe(true);
    expect(skipsFail({CI: "1"})).toBe(true);
    expect(skipsFail({CI: "0"})).toBe(false);
    expect(skipsFail({})).toBe(false);
    expect(skipsFail({CI: "0", SMART_THERMO_CI: "1"})).toBe(true);
    // The environment .ci/run gives `npm test`: its export lines, run by bash with CI=0 and CI=false inherited.
    const exports = readFileSync(join(ROOT, ".ci/run"), "utf8")
      .split("\n")
      .filter((line) => line.startsWith("export "));
    const ci = readFileSync(join(ROOT, ".ci/run"), "utf8");
    expect(ci.indexOf("export SMART_THERMO_CI=1"), "set before `npm test` runs").toBeLessThan(ci.indexOf("\nnpm test ||"));
    for (const inherited of ["0", "false"]) {
      const env = execFileSync("bash", ["-c", `${exports.join("\n")}\nenv`], {
        env: {PATH: process.env.PATH, CI: inherited},
        encoding: "utf8"
      });
      const vars = Object.fromEntries(env.split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
      expect(skipsFail(vars), `CI=${inherited} inherited`).toBe(true);
    }
  });

  it("adds the summary files of both runs, and fails when one is missing (that run did not finish)", () => {
    const ok = write(JSON.stringify({passed: 3, failed: 0, skipped: 0, exitCode: 0}));
    const run = (...paths: string[]) =>
      spawnSync(process.execPath, [join(ROOT, "scripts/vitest-report.mjs"), ...paths], {encoding: "utf8"});
    const both = run(ok, write(JSON.stringify({passed: 2, failed: 0, skipped: 0, exitCode: 0})));
    expect({status: both.status, line: both.stdout.trim()}).toEqual({status: 0, line: "5 passed, 0 failed"});
    const oneMissing = run(ok, join(dir, "no-summary.json"));
    expect({status: oneMissing.status, line: oneMissing.stdout.trim()}).toEqual({status: 1, line: "3 passed, 1 failed"});
    expect(oneMissing.stderr).toContain("missing");
    // A run that exited non-zero without counting a failure counts as one.
    const odd = run(write(JSON.stringify({passed: 4, failed: 0, skipped: 0, exitCode: 1})));
    expect({status: odd.status, line: odd.stdout.trim()}).toEqual({status: 1, line: "4 passed, 1 failed"});
  });
});
