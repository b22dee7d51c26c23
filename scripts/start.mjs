#!/usr/bin/env node
/**
 * `npm start`: read `.env` when there is one, NODE_ENV=development unless set, build if the sources changed, find a Postgres
 * (DATABASE_URL, else the local server on 5432, else an embedded one: scripts/embedded-postgres.mjs;
 * EMBEDDED_PG_PORT, default 54329), start Redis locally if none answers and redis-server is
 * installed, run `npm run migrate` (built), then serve the API.
 *
 * The API runs as the application's role, never a superuser (docs/database-role.md). The migrate
 * step creates that role and its databases when they are missing, as an administrator:
 * DATABASE_ADMIN_URL if set, the embedded cluster's superuser, or `postgres` on the local server
 * (which this machine's kind trusts on loopback). It connects as the administrator only when the
 * role cannot already use databases it owns, and the API process never gets the admin URL.
 *
 * While it runs on an embedded Postgres it picked itself, it writes `.data/dev-services.json`
 * (`{"pid": <this process>, "databaseUrl": "postgres://…"}`, mode 0600) and removes it when it
 * exits, so that `npm run seed`, `npm run token` and `npm run migrate` without DATABASE_URL find
 * the same Postgres (src/config/env.ts reads it while that pid is alive).
 */
import {spawn, spawnSync} from "node:child_process";
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync} from "node:fs";
import net from "node:net";
import {join} from "node:path";
import {EmbeddedPostgresError, prepareEmbeddedPostgres} from "./embedded-postgres.mjs";

const root = new URL("..", import.meta.url).pathname;
// A `.env` of the checkout (say, copied from .env.example for the compose stack) sets what the
// environment does not: the variables already set win.
if (existsSync(join(root, ".env"))) process.loadEnvFile(join(root, ".env"));
const env = {...process.env};
const devServicesFile = join(root, ".data/dev-services.json");

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function buildIfNeeded() {
  const stamp = join(root, "dist/.built");
  const sourcesChanged =
    !existsSync(stamp) ||
    Math.max(newestMtime(join(root, "src")), statSync(join(root, "tsed.config.ts")).mtimeMs) > statSync(stamp).mtimeMs;
  if (!sourcesChanged) return;
  console.log("[start] building (swc) …");
  const result = spawnSync("npm", ["run", "--silent", "build"], {cwd: root, stdio: "inherit"});
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeFileSync(stamp, new Date().toISOString());
}

function canConnect(port, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const socket = net.connect({port, host, timeout: 1_000});
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
  });
}

/** The role the API connects as (src/platform/db/database-role.ts: APP_ROLE). */
const APP_ROLE = "smart_thermo";
/** Who may create that role and its databases; undefined: nobody (they must exist). */
let adminUrl = env.DATABASE_ADMIN_URL;

/** EMBEDDED_PG=always: the embedded Postgres even when 5432 answers (DATABASE_URL still wins). */
async function ensurePostgres() {
  if (env.DATABASE_URL) return undefined;
  const always = env.EMBEDDED_PG === "always";
  if (!always && (await canConnect(5432))) {
    // The default DATABASE_URL (the application's role on the local server) is used.
    adminUrl ??= "postgres://postgres@127.0.0.1:5432/postgres";
    return undefined;
  }
  const port = Number(env.EMBEDDED_PG_PORT ?? 54329);
  console.log(
    `[start] ${always ? "EMBEDDED_PG=always" : "no Postgres on 127.0.0.1:5432 and no DATABASE_URL"}: starting an embedded Postgres on ${port}`
  );
  try {
    const cluster = await prepareEmbeddedPostgres({
      dataDir: join(root, ".data/postgres"),
      port,
      log: (line) => console.log(`[start] ${line}`)
    });
    await cluster.start();
    console.log(`[start] embedded Postgres ready (data in ${cluster.dataDir}${cluster.runAs ? `, run as ${cluster.runAs}` : ""})`);
    // The cluster's superuser only creates the application's role (a fixed password: the cluster
    // listens on loopback, for this checkout's development only).
    adminUrl = cluster.url("postgres");
    const app = new URL(cluster.url("smart_thermo"));
    app.username = APP_ROLE;
    app.password = APP_ROLE;
    env.DATABASE_URL = app.toString();
    writeDevServices(env.DATABASE_URL);
    return cluster;
  } catch (error) {
    const reason = error instanceof EmbeddedPostgresError ? error.message : (error?.stack ?? String(error));
    console.error(`[start] could not start the embedded Postgres: ${reason}`);
    console.error(
      `[start] Either run a Postgres yourself and set DATABASE_URL (e.g. postgres://smart_thermo@localhost:5432/smart_thermo, and DATABASE_ADMIN_URL=postgres://postgres@localhost:5432/postgres to create that role; docker compose up -d postgres starts one), or fix the above and run npm start again (EMBEDDED_PG_PORT picks another port than ${port}).`
    );
    process.exit(1);
  }
}

/** Written atomically, readable by this user only (the URL carries the password). */
function writeDevServices(databaseUrl) {
  mkdirSync(join(root, ".data"), {recursive: true});
  const partial = `${devServicesFile}.${process.pid}`;
  writeFileSync(partial, `${JSON.stringify({pid: process.pid, databaseUrl})}\n`, {mode: 0o600});
  renameSync(partial, devServicesFile);
}

/** A file left by an `npm start` that was killed (its pid is gone) names a Postgres that is gone too. */
function removeStaleDevServices() {
  try {
    const {pid} = JSON.parse(readFileSync(devServicesFile, "utf8"));
    process.kill(pid, 0);
  } catch (error) {
    if (error.code !== "EPERM") rmSync(devServicesFile, {force: true});
  }
}

/** Only our own: another `npm start` may have written it since. */
function removeDevServices() {
  try {
    if (JSON.parse(readFileSync(devServicesFile, "utf8")).pid === process.pid) unlinkSync(devServicesFile);
  } catch {
    // not there, or not ours
  }
}

async function ensureRedis() {
  if (env.REDIS_URL || (await canConnect(6379))) return;
  const which = spawnSync("sh", ["-c", "command -v redis-server"], {encoding: "utf8"});
  if (which.status !== 0) {
    console.warn(
      "[start] no Redis on 127.0.0.1:6379 and redis-server is not installed: the API runs, uncached, and /health/ready reports Redis down"
    );
    return;
  }
  console.log("[start] starting a local redis-server on 6379");
  spawnSync("redis-server", ["--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"], {
    stdio: "inherit"
  });
}

if (!env.NODE_ENV) {
  env.NODE_ENV = "development";
  console.log(
    "[start] NODE_ENV is unset: running with NODE_ENV=development (development token issuer on; NODE_ENV=production turns it off)"
  );
}
buildIfNeeded();
removeStaleDevServices();
const embedded = await ensurePostgres();
process.on("exit", removeDevServices);
await ensureRedis();

// Creates the role and databases when missing, and migrates, before the API connects as that role.
const migrate = spawnSync(process.execPath, ["--enable-source-maps", join(root, "dist/src/cli/migrate.js")], {
  cwd: root,
  env: adminUrl ? {...env, DATABASE_ADMIN_URL: adminUrl} : env,
  stdio: "inherit"
});
if (migrate.status !== 0) {
  console.error(
    `[start] npm run migrate failed (above). The API connects as DATABASE_URL's role (default ${APP_ROLE}), which must exist, own its databases and not be a superuser: set DATABASE_ADMIN_URL to a role that may create them, or see docs/database-role.md`
  );
  if (embedded) await embedded.stop().catch(() => {});
  process.exit(1);
}
delete env.DATABASE_ADMIN_URL;

// A process group of its own: a Ctrl-C reaches this process only, which forwards it once (the
// server takes a second SIGINT as "stop now"), and stops Postgres only after the server drained.
const server = spawn(process.execPath, ["--enable-source-maps", join(root, "dist/src/index.js")], {
  cwd: root,
  env,
  stdio: "inherit",
  detached: true
});
let forwarded = false;
const forward = (signal) => {
  if (forwarded) return;
  forwarded = true;
  server.kill(signal);
};
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, forward);
process.on("exit", () => server.exitCode === null && server.signalCode === null && server.kill("SIGTERM"));
server.on("exit", async (code, signal) => {
  if (embedded) await embedded.stop().catch(() => {});
  process.exit(code ?? (signal ? 0 : 1));
});
