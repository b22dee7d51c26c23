// @ts-check
/**
 * `npm run depcheck` (part of `npm run check`, which `npm test` runs): the shape of src/ as rules.
 *
 * - Features (src/modules/<feature>) depend on one another in one direction only: a feature may
 *   import the features before it in FEATURE_ORDER, never one after it. This forbids cycles
 *   between features (not only between files) and says which way the write path goes: readings
 *   write alerts and stats, stats never import readings. src/modules/index.ts lists the features
 *   in the same order (a spec checks it).
 * - src/platform (infrastructure) and src/common know no feature, and no entry point.
 * - No file-level cycles anywhere.
 */
const FEATURE_ORDER = ["users", "devices", "alerts", "notifications", "stats", "readings", "device-clients", "tenants"];

/** One rule per feature: it may not import any feature listed after it. */
const featureOrderRules = FEATURE_ORDER.slice(0, -1).map((feature, index) => ({
  name: `feature-order-${feature}`,
  comment: `${feature} may only use the features before it in FEATURE_ORDER (${FEATURE_ORDER.slice(0, index).join(", ") || "none"})`,
  severity: "error",
  from: {path: `^src/modules/${feature}/`},
  to: {path: `^src/modules/(${FEATURE_ORDER.slice(index + 1).join("|")})/`}
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment:
        "A cycle of imports: untangle it (a shared piece goes down into common/ or platform/, or one side stops importing the other).",
      severity: "error",
      from: {},
      to: {circular: true}
    },
    {
      name: "platform-knows-no-feature",
      comment:
        "platform/ is infrastructure without domain rules: features hand it what it needs (constraints, schedules, entities), it never imports them.",
      severity: "error",
      from: {path: "^src/platform/"},
      to: {path: ["^src/modules/", "^src/config/mikro-orm\\.config\\.ts$", "^src/(server|bootstrap|index|worker)\\.ts$", "^src/cli/"]}
    },
    {
      name: "common-knows-no-feature",
      comment: "common/ holds what every feature shares (base entity, errors, the error filter): it imports no feature.",
      severity: "error",
      from: {path: "^src/common/"},
      to: {path: ["^src/modules/", "^src/config/mikro-orm\\.config\\.ts$", "^src/(server|bootstrap|index|worker)\\.ts$", "^src/cli/"]}
    },
    {
      name: "features-know-no-entry-point",
      comment: "Features are assembled by the server and the CLIs, never the other way round.",
      severity: "error",
      from: {path: "^src/modules/"},
      to: {path: ["^src/(server|bootstrap|index|worker)\\.ts$", "^src/cli/", "^tsed\\.config\\.ts$"]}
    },
    {
      name: "migrations-know-no-feature",
      comment: "A migration is frozen SQL: it must not change when a feature's code does.",
      severity: "error",
      from: {path: "^src/migrations/"},
      to: {path: "^src/modules/"}
    },
    ...featureOrderRules
  ],
  options: {
    doNotFollow: {path: "node_modules"},
    exclude: {path: "\\.spec\\.ts$"},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: "tsconfig.json"},
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
      extensions: [".ts", ".js"]
    }
  }
};
