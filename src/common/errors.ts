/**
 * Domain errors: services throw these (never HTTP exceptions); the exception filter turns them
 * into the API's error shape.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number;
  errors: Record<string, unknown>[] = [];

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends DomainError {
  readonly status = 404;

  constructor(entity: string, id?: string) {
    super(id === undefined ? `${entity} not found` : `${entity} "${id}" not found`);
  }
}

export class UnauthorizedError extends DomainError {
  readonly status = 401;
}

export class ForbiddenError extends DomainError {
  readonly status = 403;
}

export class ConflictError extends DomainError {
  readonly status = 409;
}

export class InvalidInputError extends DomainError {
  readonly status = 400;

  constructor(message: string, errors: Record<string, unknown>[] = []) {
    super(message);
    this.errors = errors;
  }
}

/** The caller sends more than its share: retry after `retryAfterSeconds`. */
export class TooManyRequestsError extends DomainError {
  readonly status = 429;

  constructor(
    message: string,
    readonly retryAfterSeconds: number
  ) {
    super(message);
  }
}

/**
 * A backing service (Postgres, Redis) is unreachable: the client should retry later. The message
 * is sent to the client as it is: a fixed text, never a driver's; pass the driver's error as
 * `cause`, which only the log sees.
 */
export class ServiceUnavailableError extends DomainError {
  readonly status = 503;

  constructor(
    message: string,
    readonly retryAfterSeconds = 5,
    options?: {cause?: unknown}
  ) {
    super(message);
    if (options && "cause" in options) this.cause = options.cause;
  }
}

/** A body or message larger than the server accepts. */
export class PayloadTooLargeError extends DomainError {
  readonly status = 413;
}
