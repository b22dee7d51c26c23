import {mkdtemp, writeFile} from "node:fs/promises";
import http from "node:http";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {exportJWK, generateKeyPair} from "jose";
import {Redis} from "ioredis";
import pg from "pg";

/**
 * Once per test run: fresh test databases, two RS256 signing keys (one published in a JWKS
 * served on loopback, one never published, to forge tokens with), and a BullMQ prefix of its own.
 */
export default async function globalSetup() {
  const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/smart_thermo_test";
  const analyticsUrl = process.env.ANALYTICS_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/smart_thermo_test_analytics";
  await recreateDatabases([databaseUrl, analyticsUrl]);

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
  process.env.DATABASE_URL = databaseUrl;
  process.env.ANALYTICS_DATABASE_URL = analyticsUrl;
  process.env.AUTH_JWKS_URI = `http://127.0.0.1:${port}/jwks.json`;
  process.env.TEST_JWT_KEYS_FILE = keyFile;
  process.env.QUEUE_PREFIX = `smart-thermo-test-${process.pid}`;

  return async () => {
    await new Promise<void>((resolve) => jwks.close(() => resolve()));
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

async function recreateDatabases(urls: string[]) {
  const admin = new URL(urls[0]!);
  admin.pathname = "/postgres";
  const client = new pg.Client({connectionString: admin.toString()});
  await client.connect();
  try {
    for (const url of urls) {
      const name = new URL(url).pathname.slice(1);
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unexpected test database name ${name}`);
      await client.query(`drop database if exists "${name}" with (force)`);
      await client.query(`create database "${name}"`);
    }
  } finally {
    await client.end();
  }
}
