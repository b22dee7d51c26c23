import {JsonEntityStore, Returns} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";

/**
 * Adds to each operation of `target` the statuses every route of its kind can answer, where the
 * operation does not describe them itself: 400 when it takes path, query or body parameters (a
 * malformed id, date or body), 404 when it names a resource by path, 413 when it takes a body
 * (BODY_LIMIT), and 503 for all (Postgres or Redis unavailable). One place, so that a route added
 * later cannot forget them and the OpenAPI document says every status a client can meet.
 */
export function documentCommonStatuses(target: new (...args: never[]) => object): void {
  for (const name of Object.getOwnPropertyNames(target.prototype)) {
    const descriptor = Object.getOwnPropertyDescriptor(target.prototype, name);
    if (name === "constructor" || typeof descriptor?.value !== "function") continue;
    const endpoint = JsonEntityStore.fromMethod(target, name);
    const kinds = new Set(endpoint.parameters.map((param) => param.paramType));
    const add = (status: number, description: string) => {
      if (!endpoint.operation.getResponses().has(String(status)))
        Returns(status, ErrorBody).Description(description)(target.prototype, name, descriptor);
    };
    if (kinds.has("PATH") || kinds.has("QUERY") || kinds.has("BODY")) add(400, "Invalid parameter or body: `errors` names each one");
    if (kinds.has("PATH")) add(404, "Not found in the caller's tenant");
    if (kinds.has("BODY")) add(413, "Request body larger than the server's limit (BODY_LIMIT)");
    add(503, "A backing service (Postgres, Redis) is unavailable; retry after Retry-After");
  }
}
