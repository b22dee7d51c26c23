import {MikroORM} from "@mikro-orm/postgresql";
import type {Logger} from "@tsed/common";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {defaultOrmOptions} from "../../src/config/mikro-orm.config.js";
import {ChangeFeed} from "../../src/platform/db/change-feed.js";
import {newTenant} from "../helpers/tokens.js";

/**
 * The polled feed behind the caches of device keys and caller users, on a table of its own: what
 * it passes on, when a cache may trust it, and which reads it tells a cache not to keep.
 */
describe("ChangeFeed", () => {
  let orm: MikroORM;
  const schema = newTenant("feed");
  const table = `"${schema}"."changes"`;
  const feedSql = `select now() as "now", coalesce(array_agg(c."key"), '{}') as "changed", coalesce(array_agg(c."stamp"::text), '{}') as "stamps"
    from ${table} c where c."stamp" >= :since::timestamptz - interval '30 seconds'`;
  const warnings: unknown[] = [];
  const logger = {warn: (entry: unknown) => warnings.push(entry)} as unknown as Logger;

  function feedOf(sql = feedSql) {
    const passedOn: string[][] = [];
    const feed = new ChangeFeed({
      event: "TEST",
      sql,
      pollMs: 60_000,
      freshnessMs: 3_000,
      em: () => orm.em.fork(),
      logger: () => logger,
      whileFailing: "the test's cache reads the table",
      onChanged: (keys) => passedOn.push([...keys].sort())
    });
    return {feed, passedOn};
  }
  const change = (key: string, stamp = "clock_timestamp()") =>
    orm.em
      .getConnection()
      .execute(`insert into ${table} ("key", "stamp") values (?, ${stamp}) on conflict ("key") do update set "stamp" = excluded."stamp"`, [
        key
      ]);

  beforeAll(async () => {
    orm = await MikroORM.init(defaultOrmOptions(loadConfig()));
    await orm.em
      .getConnection()
      .execute(`create schema "${schema}"; create table ${table} ("key" text primary key, "stamp" timestamptz not null)`);
  });
  afterAll(async () => {
    await orm.em.getConnection().execute(`drop schema "${schema}" cascade`);
    await orm.close(true);
  });

  it("passes each change on once though the overlap answers it again, and a key changed again once more", async () => {
    const {feed, passedOn} = feedOf();
    await feed.poll();
    await change("a");
    await change("b");
    await feed.poll();
    await feed.poll();
    await change("a");
    await feed.poll();
    expect(passedOn).toEqual([["a", "b"], ["a"]]);
  });

  it("passes on a change stamped before its watermark (a transaction that committed late), within the overlap", async () => {
    const {feed, passedOn} = feedOf();
    await feed.poll();
    await feed.poll();
    expect(passedOn.flat()).not.toContain("late");
    await change("late", "now() - interval '10 seconds'");
    await feed.poll();
    expect(passedOn.flat()).toContain("late");
  });

  it("is fresh from an answering poll's start for freshnessMs; a failing poll logs and leaves it stale", async () => {
    const failing = feedOf("select 1 / 0").feed;
    expect(failing.isFresh()).toBe(false);
    await failing.poll();
    expect(failing.isFresh()).toBe(false);
    expect(warnings).toContainEqual(expect.objectContaining({event: "TEST_FEED_FAILED", note: "the test's cache reads the table"}));

    const {feed} = feedOf();
    const before = performance.now();
    await feed.poll();
    expect(feed.isFresh()).toBe(true);
    expect(feed.isFresh(before + 2_999)).toBe(true);
    expect(feed.isFresh(performance.now() + 3_000)).toBe(false);
  });

  it("tells a read that started before the poll that named its key not to be kept, and one after it that it may", async () => {
    const {feed} = feedOf();
    await feed.poll();
    const readStartedBefore = performance.now();
    await change("raced");
    await feed.poll();
    const readStartedAfter = performance.now();
    expect(feed.changedSince("raced", readStartedBefore)).toBe(true);
    expect(feed.changedSince("raced", readStartedAfter)).toBe(false);
    expect(feed.changedSince("never-changed", readStartedBefore)).toBe(false);
  });
});
