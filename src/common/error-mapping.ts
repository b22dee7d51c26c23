import {STATUS_CODES} from "node:http";
import {
  CheckConstraintViolationException,
  ConnectionException,
  DriverException,
  ForeignKeyConstraintViolationException,
  NotFoundError as OrmNotFoundError,
  OptimisticLockError,
  UniqueConstraintViolationException,
  ValidationError as OrmValidationError
} from "@mikro-orm/core";
import {Exception} from "@tsed/exceptions";
import {InvalidTenantIdError} from "../platform/tenancy/tenant-id.js";
import {DomainError, ServiceUnavailableError, TooManyRequestsError} from "./errors.js";

export interface HttpError {
  status: number;
  name: string;
  message: string;
  errors: Record<string, unknown>[];
  retryAfterSeconds?: number;
}

export const statusName = (status: number) => (STATUS_CODES[status] ?? "Error").toUpperCase().replace(/[^A-Z0-9]+/g, "_");

const INTERNAL: HttpError = {status: 500, name: "INTERNAL_SERVER_ERROR", message: "An unexpected error occurred", errors: []};

/**
 * Every error becomes one of the API's documented statuses. Client mistakes are 4xx with a clear
 * message; an unreachable backing service is 503; anything unknown is a 500 that says nothing of
 * its cause (the cause is logged by the filter).
 */
export function toHttpError(error: unknown): HttpError {
  const make = (status: number, message: string, errors: Record<string, unknown>[] = []): HttpError => ({
    status,
    name: statusName(status),
    message,
    errors
  });

  if (error instanceof DomainError) {
    const mapped = make(error.status, error.message, error.errors);
    if (error instanceof ServiceUnavailableError || error instanceof TooManyRequestsError)
      mapped.retryAfterSeconds = error.retryAfterSeconds;
    return mapped;
  }
  if (error instanceof InvalidTenantIdError) return make(403, error.message);
  if (error instanceof Exception) {
    if (error.status >= 500) return INTERNAL;
    const errors = [error, error.origin as {errors?: unknown} | undefined].flatMap((e) => (Array.isArray(e?.errors) ? e.errors : []));
    return make(error.status, error.message, errors.map(sanitizeValidationError));
  }
  if (error instanceof OrmNotFoundError) return make(404, "Not found");
  if (error instanceof OptimisticLockError) return make(409, "The resource was changed by another request; reload and retry");
  if (error instanceof UniqueConstraintViolationException) return make(409, "A resource with the same unique value already exists");
  if (error instanceof ForeignKeyConstraintViolationException)
    return make(409, "The resource is still referenced or references a missing resource");
  if (error instanceof CheckConstraintViolationException && isNoPartition(error)) {
    // A time-partitioned table (readings) has no partition for the row's instant: older than the
    // oldest month kept, or beyond the months created ahead.
    return make(400, "recordedAt is outside the months this tenant stores readings for (past the raw retention, or too far ahead)", [
      {keyword: "partition", instancePath: "/recordedAt"}
    ]);
  }
  if (isUnavailable(error)) return {...make(503, "A backing service is unavailable; retry later"), retryAfterSeconds: 5};
  if (error instanceof OrmValidationError) return INTERNAL;

  // body-parser and other http-errors style errors carry an explicit client status.
  const httpish = error as {status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown};
  const status = Number(httpish?.status ?? httpish?.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    return make(status, clientMessage(httpish.type, status, httpish.message));
  }
  return INTERNAL;
}

function clientMessage(type: unknown, status: number, message: unknown): string {
  switch (type) {
    case "entity.unsafe":
      // Our own body check (platform/validation/json-body.ts): its message is written for clients.
      return String(message);
    case "entity.parse.failed":
      return "The request body is not valid JSON";
    case "entity.too.large":
      return "The request body is too large";
    case "encoding.unsupported":
    case "charset.unsupported":
      return "Unsupported body encoding";
    default:
      return STATUS_CODES[status] ?? "Bad request";
  }
}

/** AJV errors, minus the (possibly large) rejected data echoed back. */
function sanitizeValidationError(error: unknown): Record<string, unknown> {
  if (!error || typeof error !== "object") return {message: String(error)};
  const {instancePath, keyword, message, params, requestPath, dataPath} = error as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries({requestPath, dataPath, instancePath, keyword, message, params}).filter(([, v]) => v !== undefined)
  );
}

/**
 * Connection failures, Postgres shutting down or out of connections, and a statement or lock
 * wait cancelled by its timeout (57014, 55P03): the database is too busy for this request now.
 */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "08000",
  "08003",
  "08006",
  "08001",
  "08004",
  "57014",
  "55P03"
]);

/** Postgres' "no partition of relation … found for row" (SQLSTATE 23514, like a CHECK violation). */
function isNoPartition(error: Error): boolean {
  return /no partition of relation/.test(error.message);
}

/**
 * Postgres down, restarting, out of connections, or the pool timing out waiting for one.
 *
 * "Transaction query already complete" is knex's answer to a query on a transaction whose BEGIN
 * already failed because the connection died (seen under a Postgres restart): nothing was
 * written, so it is "retry later", like the connection error behind it.
 */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof ServiceUnavailableError || error instanceof ConnectionException) return true;
  const candidate = error as {code?: unknown; name?: unknown; message?: unknown; sqlState?: unknown};
  if (error instanceof DriverException && UNAVAILABLE_CODES.has(String(candidate.code ?? candidate.sqlState))) return true;
  if (UNAVAILABLE_CODES.has(String(candidate?.code))) return true;
  const message = String(candidate?.message ?? "");
  return (
    candidate?.name === "KnexTimeoutError" ||
    /Timeout acquiring a connection|Connection terminated|Transaction query already complete|terminating connection|the database system is (starting up|shutting down)|Client has encountered a connection error/i.test(
      message
    )
  );
}
