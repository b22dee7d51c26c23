/**
 * Raised by application code when a guarded write finds that a concurrent transaction changed a
 * row this transaction's decision was based on (an optimistic check that matched no row). It is a
 * serialization failure detected by us rather than by Postgres: the RetryStrategy re-runs the
 * whole transaction, which then decides again on fresh data.
 */
export class ConcurrentChangeError extends Error {
  /** Same meaning as Postgres' own serialization failure. */
  readonly code = "40001";

  constructor(message: string) {
    super(message);
    this.name = "ConcurrentChangeError";
  }
}
