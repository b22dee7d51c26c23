import {type ChildProcess, spawn, spawnSync} from "node:child_process";
import net from "node:net";
import {join} from "node:path";
import pg from "pg";
import {prepareEmbeddedPostgres} from "../../../scripts/embedded-postgres.mjs";
import {APP_ROLE, provisionDatabases} from "../../../src/platform/db/database-role.js";

const ROOT = new URL("../../..", import.meta.url).pathname;

/** Ports this process has handed out: the kernel may offer a port again once its probe closed it. */
const handedOut = new Set<number>();

/** A port free now, and not one handed out before in this process (two servers of a spec must not get the same one). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const {port} = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/**
 * A Postgres cluster owned by the test, which it may stop and start at will: the embedded-postgres
 * binaries, run by scripts/embedded-postgres.mjs (as root, as the postgres user, with a copy of
 * the binaries when the checkout is in a private directory), in a fresh data directory. As in
 * production, the application's role (not a superuser, password auth) owns `databases`, created
 * here by the cluster's superuser; `url` and `client` connect as that role.
 */
export async function startOwnPostgres(databases = ["smart_thermo", "smart_thermo_analytics"]) {
  const port = await freePort();
  const cluster = await prepareEmbeddedPostgres({port});
  await cluster.start();
  const url = (database: string) => {
    const app = new URL(cluster.url(database));
    app.username = APP_ROLE;
    app.password = "app-role-password";
    return app.toString();
  };
  await provisionDatabases(databases.map(url), cluster.url("postgres"));
  return {
    port,
    url,
    stop: () => cluster.stop(),
    start: () => cluster.start(),
    dispose: () => cluster.dispose(),
    client: (database: string) => new pg.Client({connectionString: url(database)})
  };
}

/** A redis-server owned by the test, on a port of its own. */
export async function startOwnRedis() {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {stdio: "ignore"});
    await waitFor(() => canConnect(port), 10_000, "redis-server");
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child!.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  await start();
  return {port, url: `redis://127.0.0.1:${port}`, start, stop};
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({port, host: "127.0.0.1"});
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface AppProcess {
  port: number;
  baseUrl: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

let built = false;

/** Compiles the app once (like `npm start`), so child processes start in well under a second. */
export function ensureBuilt() {
  if (built) return;
  const result = spawnSync("npm", ["run", "--silent", "build"], {cwd: ROOT, stdio: "inherit"});
  if (result.status !== 0) throw new Error("build failed");
  built = true;
}

/**
 * Runs `dist/src/<entry>.js` as a real process (API, worker or MQTT-only) with the test's
 * environment. On a redis-server of the spec's own (startOwnRedis): fault tests leave the
 * machine's Redis alone. MQTT is off unless the spec sets MQTT_PORT (1883 is the machine's
 * Mosquitto); `mqtt` needs one.
 */
export async function startApp(
  env: Record<string, string> & {REDIS_URL: string},
  entry: "index" | "worker" | "mqtt" = "index"
): Promise<AppProcess> {
  if (!env.REDIS_URL) throw new Error("startApp needs a REDIS_URL of the spec's own (startOwnRedis), not the machine's");
  ensureBuilt();
  const port = entry === "index" ? await freePort() : 0;
  let output = "";
  const child = spawn(process.execPath, [join(ROOT, `dist/src/${entry}.js`)], {
    cwd: ROOT,
    // Production, but tenants created by their first token (production's default is `registered`): the specs' tenants are new each run.
    env: {
      ...process.env,
      NODE_ENV: "production",
      TENANT_PROVISIONING: "auto",
      LOG_LEVEL: "info",
      PORT: String(port),
      MQTT_PORT: "0",
      ...env
    },
    stdio: ["ignore", "pipe", "pipe"]
  });
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  if (entry === "worker") {
    await Promise.race([
      waitFor(() => output.includes("WORKER_READY"), 60_000, "the worker to be ready"),
      exited.then((code) => {
        throw new Error(`worker exited with ${code} before it was ready:\n${output}`);
      })
    ]);
  }
  if (entry === "mqtt") {
    await Promise.race([
      waitFor(() => output.includes("MQTT_READY"), 60_000, "the MQTT process to be ready"),
      exited.then((code) => {
        throw new Error(`MQTT process exited with ${code} before it was ready:\n${output}`);
      })
    ]);
  }
  if (entry === "index") {
    await Promise.race([
      waitFor(async () => (await fetch(`${baseUrl}/health/live`).catch(() => undefined))?.ok === true, 60_000, "the API to listen"),
      exited.then((code) => {
        throw new Error(`API exited with ${code} before listening:\n${output}`);
      })
    ]);
  }
  return {
    port,
    baseUrl,
    child,
    output: () => output,
    exited,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    }
  };
}
