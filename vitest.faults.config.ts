import swc from "unplugin-swc";
import {defineConfig} from "vitest/config";

/**
 * `npm run test:faults`: tests that really cut the service (Postgres restarted, Redis killed,
 * workers killed, SIGTERM under load), on a Postgres cluster and Redis servers the suite starts
 * itself — never the machine's shared ones — plus the browser check of Swagger UI. Serial: each
 * file owns processes and ports.
 */
export default defineConfig({
  plugins: [swc.vite({tsconfigFile: "./tsconfig.json"})],
  test: {
    include: ["test/faults/**/*.spec.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    setupFiles: ["test/helpers/test-env.ts"],
    env: {
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/smart_thermo_faults",
      ANALYTICS_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/smart_thermo_faults_analytics"
    },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    pool: "forks"
  }
});
