import {type ChildProcess, spawn, spawnSync} from "node:child_process";
import {copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from "node:fs";
import net from "node:net";
import {tmpdir} from "node:os";
import {join} from "node:path";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {ensureBuilt, freePort, startOwnRedis, waitFor} from "./helpers/processes.js";

const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * `npm start`'s embedded fallback from a checkout in a private directory (like a clone under
 * /root or `mktemp -d`): scripts/start.mjs copied into a 0700 temporary directory, the rest of
 * the checkout linked in. EMBEDDED_PG=always stands for "no Postgres on 5432".
 */
describe("npm start on the embedded Postgres, from a private directory", () => {
  let home: string;
  let checkout: string;
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  const relocated: string[] = [];

  beforeAll(async () => {
    redis = await startOwnRedis();
    ensureBuilt();
    writeFileSync(join(ROOT, "dist/.built"), new Date().toISOString()); // what start.mjs writes after building
    home = mkdtempSync(join(tmpdir(), "smart-thermo-start-"));
    checkout = join(home, "p");
    mkdirSync(join(checkout, "scripts"), {recursive: true});
    for (const file of ["start.mjs", "embedded-postgres.mjs"]) copyFileSync(join(ROOT, "scripts", file), join(checkout, "scripts", file));
    for (const entry of ["node_modules", "dist", "src", "tsed.config.ts", "package.json"])
      symlinkSync(join(ROOT, entry), join(checkout, entry));
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(home, {recursive: true, force: true});
    for (const dir of relocated) rmSync(dir, {recursive: true, force: true});
  });

  function start(pgPort: number, apiPort: number) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      EMBEDDED_PG: "always",
      EMBEDDED_PG_PORT: String(pgPort),
      PORT: String(apiPort),
      REDIS_URL: redis.url,
      LOG_LEVEL: "warn"
    };
    delete env.DATABASE_URL;
    delete env.ANALYTICS_DATABASE_URL;
    // As on a developer's machine: no NODE_ENV and no identity provider of the test run.
    delete env.NODE_ENV;
    delete env.AUTH_ISSUER;
    delete env.AUTH_JWKS_URI;
    const child = spawn(process.execPath, [join(checkout, "scripts/start.mjs")], {cwd: checkout, env, stdio: ["ignore", "pipe", "pipe"]});
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    return {child, exited, output: () => output};
  }

  /** Whether the registry answers, to a role that is not a superuser (the API's: docs/database-role.md). */
  async function canQuery(url: string) {
    const client = new pg.Client({connectionString: url, connectionTimeoutMillis: 2_000});
    try {
      await client.connect();
      expect((await client.query("select current_setting('is_superuser') as su")).rows[0].su).toBe("off");
      return (await client.query("select count(*)::int as n from public.tenants")).rows[0].n >= 0;
    } finally {
      await client.end().catch(() => {});
    }
  }

  it("serves on it, tells the other commands where it is in .data/dev-services.json, and cleans up on SIGTERM", async () => {
    const apiPort = await freePort();
    const app = start(await freePort(), apiPort);
    let child: ChildProcess | undefined = app.child;
    try {
      await Promise.race([
        waitFor(
          async () => (await fetch(`http://127.0.0.1:${apiPort}/health/live`).catch(() => undefined))?.ok === true,
          90_000,
          "the API to listen"
        ),
        app.exited.then((code) => {
          throw new Error(`start.mjs exited with ${code}:\n${app.output()}`);
        })
      ]);
      // NODE_ENV unset: development, said on the first line, and the development issuer is on.
      expect(app.output().split("\n")[0]).toContain("NODE_ENV is unset: running with NODE_ENV=development");
      // The server's log reaches the pipe asynchronously: it may trail the first answer on a loaded machine.
      await waitFor(() => app.output().includes("DEV_ISSUER_ON"), 10_000, "the DEV_ISSUER_ON warning").catch(() => undefined);
      expect(app.output()).toContain("DEV_ISSUER_ON");
      expect((await fetch(`http://127.0.0.1:${apiPort}/dev-auth/jwks.json`)).status).toBe(200);
      const dataDir = /embedded Postgres ready \(data in (\S+?)[,)]/.exec(app.output())?.[1];
      expect(dataDir, app.output()).toBeDefined();
      if (!dataDir!.startsWith(checkout)) relocated.push(dataDir!);
      if (process.getuid?.() === 0) {
        // The postgres user cannot reach the checkout's .data/postgres: a private directory of its own instead.
        expect(app.output()).toContain("run as postgres");
        expect(dataDir).not.toContain(home);
      }

      const file = join(checkout, ".data/dev-services.json");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const services = JSON.parse(readFileSync(file, "utf8")) as {pid: number; databaseUrl: string};
      expect(services.pid).toBe(app.child.pid);
      // The server migrated the database the file names (the tenant registry is there), as the application's role.
      expect(new URL(services.databaseUrl).username).toBe("smart_thermo");
      expect(await canQuery(services.databaseUrl)).toBe(true);

      app.child.kill("SIGTERM");
      expect(await app.exited).toBe(0);
      child = undefined;
      expect(existsSync(file)).toBe(false);
      await expect(canQuery(services.databaseUrl)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      // SIGTERM: start.mjs stops the server and Postgres it started (a SIGKILL would orphan them).
      child?.kill("SIGTERM");
    }
  });

  it("says what to do, and exits 1, when the embedded Postgres cannot start (and drops a file a killed run left)", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    mkdirSync(join(checkout, ".data"), {recursive: true});
    writeFileSync(
      join(checkout, ".data/dev-services.json"),
      JSON.stringify({pid: gone, databaseUrl: "postgres://postgres:postgres@127.0.0.1:1/smart_thermo"}),
      {mode: 0o600}
    );
    try {
      const app = start((taken.address() as net.AddressInfo).port, await freePort());
      expect(await app.exited).toBe(1);
      expect(app.output()).toContain("could not start the embedded Postgres");
      expect(app.output()).toContain("Address already in use");
      expect(app.output()).toContain("set DATABASE_URL");
      expect(app.output()).not.toContain("Unhandled");
      expect(existsSync(join(checkout, ".data/dev-services.json"))).toBe(false);
    } finally {
      taken.close();
    }
  });
});
