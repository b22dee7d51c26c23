import {CheckConstraintViolationException, ConnectionException, DriverException} from "@mikro-orm/core";
import {describe, expect, it} from "vitest";
import {isUnavailable, toHttpError} from "./error-mapping.js";
import {ServiceUnavailableError} from "./errors.js";

/** A driver error as MikroORM wraps it, carrying the underlying code or message. */
function driverError(message: string, code?: string) {
  const error = new DriverException(Object.assign(new Error(message), code ? {code} : {}));
  return error;
}

describe("error mapping of unavailable backing services", () => {
  it.each([
    ["a refused connection", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {code: "ECONNREFUSED"})],
    ["Postgres shutting down (57P01)", driverError("terminating connection due to administrator command", "57P01")],
    ["a dropped connection", driverError("Connection terminated unexpectedly")],
    [
      "a query on a transaction whose BEGIN failed with the connection",
      driverError("Transaction query already complete, run with DEBUG=knex:tx for more info")
    ],
    [
      "the pool timing out",
      Object.assign(new Error("Knex: Timeout acquiring a connection. The pool is probably full."), {name: "KnexTimeoutError"})
    ],
    ["MikroORM's connection exception", new ConnectionException(new Error("down"))],
    ["our own 503", new ServiceUnavailableError("queue down")]
  ])("answers 503 with Retry-After for %s", (_, error) => {
    expect(isUnavailable(error)).toBe(true);
    const body = toHttpError(error);
    expect(body.status).toBe(503);
    expect(body.retryAfterSeconds).toBeGreaterThan(0);
  });

  it.each([
    ["a programming error", new TypeError("cannot read properties of undefined")],
    ["a constraint the code did not expect", driverError("duplicate key value violates unique constraint", "23505")],
    ["a syntax error", driverError("syntax error at or near", "42601")]
  ])("keeps %s a 500 that says nothing of its cause", (_, error) => {
    expect(isUnavailable(error)).toBe(false);
    const body = toHttpError(error);
    expect(body.status).toBe(500);
    expect(JSON.stringify(body)).not.toMatch(/undefined|syntax|duplicate/);
  });
});

describe("error mapping of a row no partition takes", () => {
  it("answers 400 naming recordedAt, while any other CHECK violation stays a 500", () => {
    const noPartition = new CheckConstraintViolationException(
      Object.assign(new Error('no partition of relation "temperature_readings" found for row'), {code: "23514"})
    );
    expect(toHttpError(noPartition)).toMatchObject({status: 400, name: "BAD_REQUEST", errors: [{instancePath: "/recordedAt"}]});
    const check = new CheckConstraintViolationException(
      Object.assign(new Error('new row violates check constraint "temperature_readings_humidity_range"'), {code: "23514"})
    );
    expect(toHttpError(check).status).toBe(500);
  });
});
