#!/usr/bin/env node
/**
 * `npm run check` (and so `npm test`) fails when a package of the `@tsed/` scope is installed more
 * than once. Ts.ED's dependency injection keys providers by class: a second copy of @tsed/di,
 * @tsed/platform-http, @tsed/core, @tsed/schema or @tsed/json-mapper (which @tsed/common's exact
 * pin of @tsed/platform-http would bring) makes tokens that look the same and do not match, and the
 * app fails in ways that name neither copy. package.json's `overrides` keep one copy of each; this
 * says so the moment an install stops doing it.
 *
 * It walks node_modules (nested node_modules included) rather than parse `npm ls`, which takes
 * seconds and answers differently for overridden and deduplicated packages.
 */
import {readdirSync, readFileSync} from "node:fs";
import {join, relative} from "node:path";
import {fileURLToPath} from "node:url";

/** Every package of `scope` installed under `root`'s node_modules, by name, with each copy's folder and version. */
export function installedCopies(root, scope = "@tsed") {
  const copies = new Map();
  const visit = (modules) => {
    for (const entry of entries(modules)) {
      if (entry.name.startsWith(".")) continue;
      const folders = entry.name.startsWith("@")
        ? entries(join(modules, entry.name)).map((child) => join(modules, entry.name, child.name))
        : [join(modules, entry.name)];
      for (const folder of folders) {
        const name = relative(modules, folder).split("\\").join("/");
        if (name.startsWith(`${scope}/`)) {
          const version = readVersion(folder);
          if (version !== undefined) copies.set(name, [...(copies.get(name) ?? []), {folder: relative(root, folder), version}]);
        }
        visit(join(folder, "node_modules"));
      }
    }
  };
  visit(join(root, "node_modules"));
  return copies;
}

/** The packages installed more than once. */
export function duplicates(copies) {
  return [...copies].filter(([, found]) => found.length > 1);
}

function entries(folder) {
  try {
    return readdirSync(folder, {withFileTypes: true})
      .filter((entry) => entry.isDirectory())
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch {
    return [];
  }
}

function readVersion(folder) {
  try {
    return JSON.parse(readFileSync(join(folder, "package.json"), "utf8")).version;
  } catch {
    return undefined;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url));
  const twice = duplicates(installedCopies(root));
  if (twice.length > 0) {
    for (const [name, found] of twice) {
      console.error(`${name} is installed ${found.length} times: ${found.map((c) => `${c.folder} (${c.version})`).join(", ")}`);
    }
    console.error("Ts.ED needs one copy of each @tsed/ package: align the versions (package.json overrides) and reinstall.");
    process.exit(1);
  }
}
