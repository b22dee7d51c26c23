import {OptimisticLockError} from "@mikro-orm/core";
import {Exception} from "@tsed/exceptions";
import {Catch, type ExceptionFilterMethods, type PlatformContext} from "@tsed/common";
import {toHttpError} from "./error-mapping.js";

/**
 * The only place errors become HTTP responses. It replaces Ts.ED's own filters for Error and
 * Exception (and @tsed/mikro-orm's for OptimisticLockError) by registering after them, so that
 * validation, auth and domain errors all share the API's one error shape.
 */
@Catch(Error, Exception, OptimisticLockError)
export class ErrorFilter implements ExceptionFilterMethods {
  catch(error: Error, ctx: PlatformContext) {
    const body = toHttpError(error);
    if (body.status >= 500) {
      // The body says only body.message (fixed texts); what went wrong is here, under the request
      // id (`reqId`, which the client got in X-Request-Id), so a report of it can be found.
      const cause = error?.cause as Error | undefined;
      ctx.logger.error({
        event: body.status === 503 ? "BACKING_SERVICE_UNAVAILABLE" : "UNHANDLED_ERROR",
        error_name: error?.name,
        error_message: error?.message,
        ...(cause ? {cause_name: cause.name, cause_message: cause.message} : {}),
        stack: error?.stack
      });
    }
    const headers: Record<string, string> = {};
    if (body.retryAfterSeconds !== undefined) headers["Retry-After"] = String(body.retryAfterSeconds);
    const upstream = (error as {headers?: Record<string, string>}).headers;
    if (upstream?.["WWW-Authenticate"]) headers["WWW-Authenticate"] = upstream["WWW-Authenticate"];
    ctx.response.setHeaders(headers).status(body.status).contentType("application/json").body(body);
  }
}
