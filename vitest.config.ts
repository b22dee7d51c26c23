import swc from "unplugin-swc";
import {defineConfig} from "vitest/config";

export default defineConfig({
  // unplugin-swc takes the decorator settings (legacy decorators, metadata, no define semantics) from tsconfig.json.
  plugins: [swc.vite({tsconfigFile: "./tsconfig.json"})],
  test: {
    include: ["src/**/*.spec.ts", "test/**/*.spec.ts"],
    exclude: ["test/faults/**", "node_modules/**"],
    globalSetup: ["test/helpers/global-setup.ts"],
    setupFiles: ["test/helpers/test-env.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Every spec works in tenants of its own, so files may run side by side on the shared database.
    pool: "forks",
    maxWorkers: 2
  }
});
