import {DriverException} from "@mikro-orm/core";
import pg from "pg";
import {describe, expect, it} from "vitest";
import {lostBackendOf, mayHaveCommitted, withLostBackend} from "./lost-connection.js";

/** A driver error as MikroORM wraps it, carrying the underlying code or message. */
const driverError = (message: string, code?: string) => new DriverException(Object.assign(new Error(message), code ? {code} : {}));

/** An error Postgres answered, as pg raises it. */
const answered = (message: string, code: string) => Object.assign(new pg.DatabaseError(message, 0, "error"), {code});

describe("mayHaveCommitted: a failed call whose work may be done all the same", () => {
  it.each([
    ["the session terminated (57P01), converted by MikroORM", driverError("terminating connection due to administrator command", "57P01")],
    ["the session terminated (57P01), as pg raises it", answered("terminating connection due to administrator command", "57P01")],
    ["Postgres crashed (57P02)", driverError("terminating connection because of crash of another server process", "57P02")],
    ["a connection dropped", driverError("Connection terminated unexpectedly")],
    ["a socket reset", Object.assign(new Error("read ECONNRESET"), {code: "ECONNRESET"})],
    [
      "any error of a call on a connection dropped with its backend",
      withLostBackend(Object.assign(new Error("read ETIMEDOUT"), {code: "ETIMEDOUT"}), {pid: 1, startedAt: "2026-12-07 18:00:00+00"})
    ]
  ])("yes for %s", (_label, error) => {
    expect(mayHaveCommitted(error)).toBe(true);
  });

  it.each([
    ["a statement timeout (57014): rolled back", driverError("canceling statement due to statement timeout", "57014")],
    ["a lock timeout (55P03): rolled back", answered("canceling statement due to lock timeout", "55P03")],
    ["a unique violation", answered("duplicate key value violates unique constraint", "23505")],
    ["a deadlock", driverError("deadlock detected", "40P01")],
    ["no connection to be had", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {code: "ECONNREFUSED"})],
    [
      "the pool timing out",
      Object.assign(new Error("Knex: Timeout acquiring a connection. The pool is probably full."), {name: "KnexTimeoutError"})
    ],
    ["too many connections (53300)", answered("sorry, too many clients already", "53300")],
    [
      "a client whose connection had failed before: nothing sent",
      new Error("Client has encountered a connection error and is not queryable")
    ],
    ["nothing at all", undefined]
  ])("no for %s", (_label, error) => {
    expect(mayHaveCommitted(error)).toBe(false);
  });
});

describe("lostBackendOf: the backend of a lost connection, on its error", () => {
  it("survives MikroORM's conversion of the error, and is absent otherwise", () => {
    const backend = {pid: 4242, startedAt: "2026-12-07 18:00:00.123456+00"};
    const lost = withLostBackend(new Error("Connection terminated unexpectedly"), backend);
    expect(lostBackendOf(new DriverException(lost))).toEqual(backend);
    expect(lostBackendOf(driverError("Connection terminated unexpectedly"))).toBeUndefined();
    expect(lostBackendOf(undefined)).toBeUndefined();
  });
});
