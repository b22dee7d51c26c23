import swc from "unplugin-swc";
import {defineConfig} from "vitest/config";

/**
 * The fault run's databases, never the main suite's: `npm test` (maybe running at the same time)
 * owns DATABASE_URL's databases, and the run below drops and recreates its own at start.
 * FAULTS_DATABASE_URL if set, else DATABASE_URL's server with `<its database>_faults`
 * (`smart_thermo_test_faults` by default); analytics: FAULTS_ANALYTICS_DATABASE_URL, else the
 * same name + `_analytics`.
 */
function faultsDatabases() {
  const explicit = process.env.FAULTS_DATABASE_URL;
  const main = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/smart_thermo_test");
  const url = new URL(explicit ?? main.toString());
  if (!explicit) url.pathname = `${main.pathname}_faults`;
  const analytics = new URL(process.env.FAULTS_ANALYTICS_DATABASE_URL ?? url.toString());
  if (!process.env.FAULTS_ANALYTICS_DATABASE_URL) analytics.pathname = `${url.pathname}_analytics`;
  return {DATABASE_URL: url.toString(), ANALYTICS_DATABASE_URL: analytics.toString()};
}

/**
 * `npm run test:faults`: tests that really cut a service (Postgres restarted, Redis killed,
 * workers killed, SIGTERM under load) and the browser check of Swagger UI. The API and workers
 * run as real processes; what they cut (Postgres, Redis) is a server the spec starts itself, and
 * the rest runs on the machine's Postgres and Redis in the run's own databases and queue prefix
 * (globalSetup reads this `env` too). Serial: each file owns processes and ports.
 */
export default defineConfig({
  plugins: [swc.vite({tsconfigFile: "./tsconfig.json"})],
  test: {
    include: ["test/faults/**/*.spec.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    setupFiles: ["test/helpers/test-env.ts"],
    env: {...faultsDatabases(), QUEUE_PREFIX: `smart-thermo-faults-${process.pid}`},
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    pool: "forks"
  }
});
