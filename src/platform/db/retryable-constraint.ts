import {injectable} from "@tsed/common";

/** DI type of the unique indexes whose violation the RetryStrategy retries (see retryableUniqueConstraint). */
export const RETRYABLE_UNIQUE_CONSTRAINT = Symbol.for("smart-thermo:RetryableUniqueConstraint");

/**
 * Declares a unique index whose violation means "a concurrent transaction got there first": the
 * RetryStrategy re-runs the transaction, which then sees that row and takes the other branch. The
 * feature that owns the index declares it (platform code knows no feature's constraints); any
 * other unique violation is a real conflict and is not retried.
 */
export function retryableUniqueConstraint(name: string): void {
  // `.value()` sets the provider's type to VALUE: the type comes after it.
  injectable(Symbol.for(`smart-thermo:retryable-unique-constraint:${name}`))
    .value(name)
    .type(RETRYABLE_UNIQUE_CONSTRAINT);
}
