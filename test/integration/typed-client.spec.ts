import {execFileSync} from "node:child_process";
import {mkdtempSync, readFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {PlatformTest} from "@tsed/common";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant, token} from "../helpers/tokens.js";
import {startTestServer, stopTestServer} from "../helpers/test-server.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const run = (command: string, args: string[]) =>
  execFileSync(command, args, {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: {...process.env, NODE_ENV: "production", FORCE_COLOR: "0"}
  });

describe("adoption: openapi.json, a linter, and a typed client", () => {
  const dir = mkdtempSync(join(tmpdir(), "smart-thermo-openapi-"));
  const specFile = join(dir, "openapi.json");
  let server: import("node:http").Server;
  let baseUrl: string;

  beforeAll(async () => {
    // `npm run openapi`, without a database (it never connects).
    run(process.execPath, ["--import", "@swc-node/register/esm-register", "src/cli/openapi.ts", "--out", specFile]);
    await startTestServer({rateLimit: {devicePerMinute: 0, tenantPerMinute: 0, tenantReadsPerMinute: 0, tenantHeavyReads: 1_000}});
    const http = await import("node:http");
    server = http.createServer(PlatformTest.callback());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as {port: number}).port}`;
  }, 120_000);
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await stopTestServer();
  });

  it("writes an OpenAPI 3 document that Redocly's recommended rules accept without errors", () => {
    const spec = JSON.parse(readFileSync(specFile, "utf8"));
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths).length).toBeGreaterThan(10);
    const output = run("npx", ["--no-install", "redocly", "lint", specFile, "--format=stylish"]);
    expect(output).not.toMatch(/\berror\b/);
  }, 120_000);

  it("generates a client that type-checks and drives register → ingest → history → alerts", async () => {
    // Defaults make a field optional for the sender, not required: keep them optional in request bodies.
    run("npx", [
      "--no-install",
      "openapi-typescript",
      specFile,
      "--default-non-nullable",
      "false",
      "-o",
      "test/client/generated/smart-thermo.d.ts"
    ]);
    run("npx", ["--no-install", "tsc", "-p", "test/client/tsconfig.json"]);
    // Loaded by path: its types exist only once generated, so the root typecheck must not follow it.
    const clientModule = new URL("../client/smart-thermo-client.ts", import.meta.url).pathname;
    const {journey} = (await import(/* @vite-ignore */ clientModule)) as {journey: (baseUrl: string, token: string) => Promise<unknown>};
    const result = await journey(baseUrl, await token({tenant: newTenant("client"), sub: "mobile"}));
    expect(result).toEqual({
      inserted: 4,
      firstPage: [10.2, 9.3],
      secondPage: [5.1, 4.5],
      alerts: [{peak: 10.2, count: 2, open: true}],
      notFound: 404
    });
  }, 120_000);
});
