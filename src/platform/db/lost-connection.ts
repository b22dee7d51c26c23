/** SQLSTATEs and socket errors of a session that ended under a call: Postgres shut it down or crashed, or the connection broke. */
const LOST_SESSION_CODES = new Set(["57P01", "57P02", "08000", "08003", "08006", "ECONNRESET", "EPIPE"]);

/**
 * Whether a failed database call may have done its work all the same: the connection was lost,
 * Postgres ended the session, or the answer did not come in time, while the call was in flight, so
 * a COMMIT may have reached Postgres and only its answer was lost. Not so for an error Postgres
 * answered on a live session (the statement failed and its transaction rolled back: a timeout, a
 * constraint, a deadlock) nor for one raised before anything was sent (no connection to be had, or
 * a client whose connection had failed before). Errors as pg raises them or as MikroORM converts
 * them (which keeps `code` and the message).
 */
export function mayHaveCommitted(error: unknown): boolean {
  const {code, sqlState, message} = (error ?? {}) as {code?: unknown; sqlState?: unknown; message?: unknown};
  // Whatever the socket said (a keepalive's timeout, an unreachable host), a call on a connection
  // dropped with its backend was in flight on it.
  if (LOST_SESSION_CODES.has(String(code ?? sqlState)) || lostBackendOf(error)) return true;
  return /Connection terminated|terminating connection/i.test(String(message ?? ""));
}

/**
 * A Postgres backend, told apart from a later one with the same process id by when it started
 * (`backend_start`, as Postgres' text: microseconds).
 */
export interface Backend {
  pid: number;
  startedAt: string;
}

/**
 * Marks the error of a call whose connection was lost with the backend that served it
 * (TenantAffineConnections): that backend may not know yet, and what it received may still commit
 * until it has ended. Kept on the error itself, whose own properties MikroORM's conversion copies.
 */
export function withLostBackend<E>(error: E, backend: Backend): E {
  if (typeof error === "object" && error !== null) Object.assign(error, {lostBackend: backend});
  return error;
}

/** The backend of the failed call's lost connection, when known (withLostBackend). */
export function lostBackendOf(error: unknown): Backend | undefined {
  const backend = (error as {lostBackend?: Backend} | null)?.lostBackend;
  return typeof backend?.pid === "number" && typeof backend.startedAt === "string" ? backend : undefined;
}
