#!/usr/bin/env node
/**
 * node scripts/tsed-common-imports.mjs [--check]
 *
 * Moves the app's imports of the names @tsed/common re-exports (DI, controllers, middlewares,
 * params, exception filters, PlatformTest, route decorators such as Get and Post, Logger) from
 * their own packages to `@tsed/common`, merging them into one import per file. Purely mechanical
 * and idempotent: run it again after a merge brings files that import those names the old way.
 * `--check` changes nothing and exits 1 when a file would change.
 *
 * A name moves only when TypeScript resolves `@tsed/common`'s export of it to the very
 * declaration the file imports now (so a name two of @tsed/common's `export *` would clash on
 * stays where it is); everything else of those packages stays (for @tsed/schema, all but the
 * route decorators). Written with the TypeScript compiler API because a sed cannot tell the
 * names apart or merge imports; Prettier formats the files afterwards.
 */
import {spawnSync} from "node:child_process";
import {writeFileSync} from "node:fs";
import {relative} from "node:path";
import {fileURLToPath} from "node:url";
import ts from "typescript";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const COMMON = "@tsed/common";
const SOURCES = new Set([
  "@tsed/di",
  "@tsed/logger",
  "@tsed/platform-exceptions",
  "@tsed/platform-http",
  "@tsed/platform-http/testing",
  "@tsed/platform-middlewares",
  "@tsed/platform-params",
  "@tsed/platform-response-filter",
  "@tsed/platform-router",
  "@tsed/schema"
]);
/** The request-cost benchmark's baseline stays the minimal Ts.ED app it always was, import for import. */
const KEEP = new Set(["bench/lib/minimal-tsed.ts"]);
const check = process.argv.includes("--check");

const configFile = ts.findConfigFile(ROOT, ts.sys.fileExists, "tsconfig.json");
const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(configFile, ts.sys.readFile).config, ts.sys, ROOT);
const commonTypes = ts.resolveModuleName(COMMON, `${ROOT}/src/server.ts`, parsed.options, ts.sys).resolvedModule?.resolvedFileName;
if (!commonTypes) throw new Error(`${COMMON} is not installed`);
const program = ts.createProgram([...parsed.fileNames, commonTypes], parsed.options);
const checker = program.getTypeChecker();

const target = (symbol) => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
const exported = new Map(
  checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(commonTypes))).map((s) => [s.getName(), target(s)])
);

const changed = [];
for (const file of program.getSourceFiles()) {
  if (file.isDeclarationFile || !parsed.fileNames.includes(file.fileName) || KEEP.has(relative(ROOT, file.fileName))) continue;
  const moved = [];
  const edits = [];
  let existing;
  for (const statement of file.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    const from = statement.moduleSpecifier.text;
    const clause = statement.importClause;
    if (from === COMMON && clause?.namedBindings && ts.isNamedImports(clause.namedBindings) && !clause.name) existing = statement;
    if (!SOURCES.has(from) || !clause?.namedBindings || !ts.isNamedImports(clause.namedBindings) || clause.name) continue;
    const keep = [];
    for (const element of clause.namedBindings.elements) {
      const name = (element.propertyName ?? element.name).text;
      const symbol = checker.getSymbolAtLocation(element.name);
      const same = symbol && exported.get(name) === target(symbol);
      const typeOnly = clause.isTypeOnly || element.isTypeOnly;
      const local = element.propertyName ? `${name} as ${element.name.text}` : name;
      if (same) moved.push({name, text: `${typeOnly ? "type " : ""}${local}`});
      else keep.push(element.getText(file));
    }
    if (keep.length === clause.namedBindings.elements.length) continue;
    edits.push({
      statement,
      replacement: keep.length ? `import ${clause.isTypeOnly ? "type " : ""}{${keep.join(", ")}} from "${from}";` : ""
    });
  }
  if (!moved.length) continue;

  if (existing) {
    for (const element of existing.importClause.namedBindings.elements) {
      moved.push({name: (element.propertyName ?? element.name).text, text: element.getText(file)});
    }
    edits.push({statement: existing, replacement: ""});
  }
  const specifiers = [...new Map(moved.map((m) => [m.text, m])).values()]
    .sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()) || a.text.localeCompare(b.text))
    .map((m) => m.text);
  const merged = `import {${specifiers.join(", ")}} from "${COMMON}";`;
  // The merged import takes the place of the first import it replaces.
  edits.sort((a, b) => a.statement.getStart(file) - b.statement.getStart(file));
  edits[0].replacement = edits[0].replacement ? `${merged}\n${edits[0].replacement}` : merged;

  let text = file.getFullText();
  for (const {statement, replacement} of [...edits].reverse()) {
    const start = statement.getStart(file);
    let end = statement.getEnd();
    if (!replacement && text[end] === "\n") end++;
    text = text.slice(0, start) + replacement + text.slice(end);
  }
  changed.push(relative(ROOT, file.fileName));
  if (!check) writeFileSync(file.fileName, text);
}

if (check) {
  if (changed.length) {
    console.error(`imports to move to ${COMMON} (run node scripts/tsed-common-imports.mjs):\n  ${changed.join("\n  ")}`);
    process.exit(1);
  }
} else if (changed.length) {
  spawnSync("npx", ["prettier", "--write", ...changed], {cwd: ROOT, stdio: "ignore"});
  console.log(`${changed.length} files now import from ${COMMON}:\n  ${changed.join("\n  ")}`);
}
