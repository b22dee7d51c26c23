import {spawnSync} from "node:child_process";
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {afterAll, describe, expect, it} from "vitest";
import {duplicates, installedCopies} from "../../scripts/check-single-copies.mjs";

const ROOT = new URL("../..", import.meta.url).pathname;
const SCRIPT = join(ROOT, "scripts/check-single-copies.mjs");

describe("one copy of each Ts.ED package (scripts/check-single-copies.mjs, part of npm run check)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "single-copies-"));
  afterAll(() => rmSync(scratch, {recursive: true, force: true}));

  /** A node_modules tree with the given packages (`a/node_modules/b` nests b under a). */
  function tree(name: string, packages: Record<string, string>): string {
    const root = join(scratch, name);
    for (const [path, version] of Object.entries(packages)) {
      const folder = join(root, "node_modules", path);
      mkdirSync(folder, {recursive: true});
      writeFileSync(join(folder, "package.json"), JSON.stringify({name: path.split("node_modules/").at(-1), version}));
    }
    return root;
  }

  it("finds a second copy nested under the package that pinned it, and the CLI fails naming both", () => {
    const root = tree("pinned", {
      "@tsed/platform-http": "8.38.8",
      "@tsed/common": "8.38.0",
      "@tsed/common/node_modules/@tsed/platform-http": "8.38.0",
      "@tsed/di": "8.38.8",
      "@tsed/swagger/node_modules/@tsed/di": "8.38.0",
      "some-lib/node_modules/other": "1.0.0"
    });
    expect(duplicates(installedCopies(root))).toEqual([
      [
        "@tsed/platform-http",
        [
          {folder: "node_modules/@tsed/common/node_modules/@tsed/platform-http", version: "8.38.0"},
          {folder: "node_modules/@tsed/platform-http", version: "8.38.8"}
        ]
      ],
      [
        "@tsed/di",
        [
          {folder: "node_modules/@tsed/di", version: "8.38.8"},
          {folder: "node_modules/@tsed/swagger/node_modules/@tsed/di", version: "8.38.0"}
        ]
      ]
    ]);
    const run = spawnSync(process.execPath, [SCRIPT, root], {encoding: "utf8"});
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("@tsed/platform-http is installed 2 times");
  });

  it("passes a tree with one copy of each", () => {
    const root = tree("aligned", {"@tsed/platform-http": "8.38.8", "@tsed/common": "8.38.0", "@tsed/di": "8.38.8"});
    expect(duplicates(installedCopies(root))).toEqual([]);
    expect(spawnSync(process.execPath, [SCRIPT, root]).status).toBe(0);
  });

  it("holds for this checkout: one copy each of @tsed/platform-http, di, core, schema and json-mapper", () => {
    const copies = installedCopies(ROOT);
    for (const name of [
      "@tsed/platform-http",
      "@tsed/di",
      "@tsed/core",
      "@tsed/schema",
      "@tsed/json-mapper",
      "@tsed/common",
      "@tsed/passport"
    ])
      expect(copies.get(name), name).toHaveLength(1);
    expect(duplicates(copies)).toEqual([]);
  });
});
