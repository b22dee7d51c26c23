import {mkdtemp, rm, writeFile} from "node:fs/promises";
import http from "node:http";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {exportJWK, generateKeyPair} from "jose";
import {Redis} from "ioredis";
import pg from "pg";
import type {TestProject} from "vitest/node";
import {provisionDatabases} from "../../src/platform/db/database-role.js";
import {appRoleUrl} from "./test-databases.js";

/**
 * Once per test run: fresh test databases, two RS256 signing keys (one published in a JWKS
 * served on loopback, one never published, to forge tokens with), and a BullMQ prefix of its own.
 *
 * Which databases: the config's `test.env` first (vitest applies it to the test workers only, not
 * to this process: a run configured with its own databases must recreate those, never the
 * default ones), then the process environment, then the defaults.
 *
 * Which role: the servers the tests start connect as a role that owns the test databases and is
 * not a superuser, as in production (docs/database-role.md). DATABASE_URL names the server and
 * the databases, and its credentials (or DATABASE_ADMIN_URL's) are the administrator's, who drops
 * and recreates the databases; the role is DATABASE_URL's own when that is not the administrator,
 * else `smart_thermo_test` (created when missing, never dropped: runs in parallel share it).
 * Workers get the role's URLs (test-env.ts) and the admin's as TEST_DATABASE_ADMIN_URL, for the
 * few helpers that create databases.
 */
export default async function globalSetup(project: TestProject) {
  const configured = project.config.env ?? {};
  const pick = (name: string) => configured[name] ?? process.env[name];
  const databaseUrl = pick("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/smart_thermo_test";
  const analyticsUrl = pick("ANALYTICS_DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/smart_thermo_test_analytics";
  const adminUrl = new URL(pick("DATABASE_ADMIN_URL") ?? databaseUrl);
  adminUrl.pathname = "/postgres";
  const appUrls = [appRoleUrl(databaseUrl, adminUrl.toString()), appRoleUrl(analyticsUrl, adminUrl.toString())] as const;
  await recreateDatabases(appUrls, adminUrl.toString());

  const trusted = await makeKey("test-key-1");
  const untrusted = await makeKey("test-key-1"); // same kid, different key: a forged signature
  const jwks = http.createServer((req, res) => {
    if (req.url === "/jwks.json") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({keys: [trusted.publicJwk]}));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const {port} = jwks.address() as {port: number};

  const dir = await mkdtemp(join(tmpdir(), "smart-thermo-test-"));
  const keyFile = join(dir, "keys.json");
  await writeFile(keyFile, JSON.stringify({trusted: trusted.privateJwk, untrusted: untrusted.privateJwk}), {mode: 0o600});

  // Workers are forked after this and inherit these variables.
  // A config's `test.env` (the fault run's) would put the admin's URLs back in the workers: test-env.ts
  // takes these instead.
  process.env.DATABASE_URL = process.env.TEST_APP_DATABASE_URL = appUrls[0];
  process.env.ANALYTICS_DATABASE_URL = process.env.TEST_APP_ANALYTICS_DATABASE_URL = appUrls[1];
  process.env.TEST_DATABASE_ADMIN_URL = adminUrl.toString();
  process.env.AUTH_JWKS_URI = `http://127.0.0.1:${port}/jwks.json`;
  process.env.TEST_JWT_KEYS_FILE = keyFile;
  process.env.QUEUE_PREFIX = pick("QUEUE_PREFIX") ?? `smart-thermo-test-${process.pid}`;

  return async () => {
    await new Promise<void>((resolve) => jwks.close(() => resolve()));
    await rm(dir, {recursive: true, force: true});
    await removeKeys(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", `${process.env.QUEUE_PREFIX}:*`);
  };
}

/** Every server boot registers the nightly scheduler under the run's prefix: leave no keys behind. */
async function removeKeys(url: string, pattern: string) {
  const redis = new Redis(url, {lazyConnect: true, maxRetriesPerRequest: 1});
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 500);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } catch {
    // Redis already gone (a fault test, say): nothing to clean.
  } finally {
    redis.disconnect();
  }
}

async function makeKey(kid: string) {
  const {publicKey, privateKey} = await generateKeyPair("RS256", {extractable: true});
  return {
    publicJwk: {...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig"},
    privateJwk: {...(await exportJWK(privateKey)), kid, alg: "RS256"}
  };
}

/**
 * Drops and recreates the run's databases, owned by the application's role (created when missing,
 * by the code `npm run migrate` uses). Only names that say they are for tests (a `test` or
 * `faults` word): a DATABASE_URL left exported for `npm start` must not cost a developer the data.
 */
async function recreateDatabases(urls: readonly string[], adminUrl: string) {
  const names = urls.map((url) => new URL(url).pathname.slice(1));
  for (const name of names) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unexpected test database name ${name}`);
    if (!/(^|_)(test|tests|faults)(_|$)/.test(name)) {
      throw new Error(
        `refusing to drop database "${name}": the test run recreates its databases, so their names must contain a "test" or "faults" word (set DATABASE_URL / ANALYTICS_DATABASE_URL to such names)`
      );
    }
  }
  const client = new pg.Client({connectionString: adminUrl});
  await client.connect();
  try {
    for (const name of names) await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
  await provisionDatabases(urls, adminUrl);
}
