// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * `npm run lint` (part of `npm run check`, which `npm test` runs, with --max-warnings 0):
 * typescript-eslint's recommended rules, plus the type-aware rules that catch async mistakes — a
 * promise nobody awaits (no-floating-promises), a promise where a callback's result is ignored
 * (no-misused-promises), `await` on a value that is not a promise — and casts that change nothing.
 * (The type-checked preset's no-unsafe-* rules would flag every `res.body` of SuperTest.)
 */
export default tseslint.config(
  // The CI helpers .ci/run relies on are linted (and type-checked through their JSDoc, tsconfig.json).
  {
    ignores: [
      "dist/",
      "node_modules/",
      "coverage/",
      ".data/",
      "test/client/generated/",
      "**/*.mjs",
      "**/*.cjs",
      "!scripts/test.mjs",
      "!scripts/vitest-report.mjs"
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {parserOptions: {projectService: true, tsconfigRootDir: import.meta.dirname}},
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/no-unnecessary-type-assertion": "error"
    }
  },
  // Type-checked (// @ts-check): TypeScript finds undefined names there, as in .ts files, where
  // typescript-eslint's preset turns no-undef off for the same reason.
  {files: ["scripts/test.mjs", "scripts/vitest-report.mjs"], rules: {"no-undef": "off"}},
  {files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked}
);
