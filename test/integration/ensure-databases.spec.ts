import {randomBytes} from "node:crypto";
import pg from "pg";
import {afterAll, describe, expect, it} from "vitest";
import {ensureDatabases} from "../../src/platform/db/ensure-databases.js";
import {testAdminUrl} from "../helpers/test-databases.js";

/** A database URL on the test server for a name of our own (as the administrator: the run's role may not create databases). */
function urlFor(name: string): string {
  const url = new URL(testAdminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

async function onServer<T>(task: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({connectionString: urlFor("postgres")});
  await client.connect();
  try {
    return await task(client);
  } finally {
    await client.end();
  }
}

describe("creating missing databases at boot", () => {
  const names = Array.from({length: 2}, () => `st_ensure_${randomBytes(4).toString("hex")}`);
  afterAll(() =>
    onServer(async (client) => {
      for (const name of names) await client.query(`drop database if exists "${name}" with (force)`);
    })
  );

  it("creates each missing database once, however many processes race to create it, and leaves existing ones alone", async () => {
    const urls = names.map(urlFor);
    // Eight boots at once, the way several instances start on a fresh server.
    const results = await Promise.all(Array.from({length: 8}, () => ensureDatabases(urls)));
    expect(results.flat().sort()).toEqual([...names].sort());
    const existing = await onServer((client) =>
      client.query<{datname: string}>(`select datname from pg_database where datname = any($1)`, [names])
    );
    expect(existing.rows.map((row) => row.datname).sort()).toEqual([...names].sort());
    expect(await ensureDatabases(urls)).toEqual([]);
  });

  it("only connects to databases that exist, never to the maintenance database (a role without access to it still starts)", async () => {
    const connectedTo: string[] = [];
    const proto = pg.Client.prototype as unknown as {connect: (this: {database?: string}, ...args: unknown[]) => unknown};
    const original = proto.connect;
    proto.connect = function (...args) {
      connectedTo.push(String(this.database));
      return original.apply(this, args);
    };
    try {
      expect(await ensureDatabases(names.map(urlFor))).toEqual([]);
    } finally {
      proto.connect = original;
    }
    expect(connectedTo.sort()).toEqual([...names].sort());
  });
});
