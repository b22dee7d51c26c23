/** SQLSTATEs and socket errors of a session that ended under a call: Postgres shut it down or crashed, or the connection broke. */
const LOST_SESSION_CODES = new Set(["57P01", "57P02", "08000", "08003", "08006", "ECONNRESET", "EPIPE"]);

/**
 * Whether a failed database call may have done its work all the same: the connection was lost,
 * Postgres ended the session, or the answer did not come in time, while the call was in flight, so
 * a COMMIT may have reached Postgres and only its answer was lost. Not so for an error Postgres answered on a live session (the
 * statement failed and its transaction rolled back: a timeout, a constraint, a deadlock) nor for
 * one raised before anything was sent (no connection to be had, or a client whose connection had
 * failed before). Errors as pg raises them or as MikroORM converts them (which keeps `code` and
 * the message).
 */
export function mayHaveCommitted(error: unknown): boolean {
  const {code, sqlState, message} = (error ?? {}) as {code?: unknown; sqlState?: unknown; message?: unknown};
  if (LOST_SESSION_CODES.has(String(code ?? sqlState))) return true;
  return /Connection terminated|terminating connection/i.test(String(message ?? ""));
}

/**
 * Marks the error of a call on a connection given up for want of an answer (TenantAffineConnections):
 * what Postgres received of it may still commit until `until` (epoch ms). Kept on the error
 * itself, whose own properties MikroORM's conversion copies.
 */
export function withCommitPossibleUntil<E>(error: E, until: number): E {
  if (typeof error === "object" && error !== null) Object.assign(error, {commitPossibleUntil: until});
  return error;
}

/** Until when (epoch ms) the failed call may still commit, when its connection was given up while it ran; undefined: not after it failed. */
export function commitPossibleUntil(error: unknown): number | undefined {
  const until = (error as {commitPossibleUntil?: unknown} | null)?.commitPossibleUntil;
  return typeof until === "number" ? until : undefined;
}
