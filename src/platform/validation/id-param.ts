import {useDecorators} from "@tsed/core";
import {Injectable, PathParams, type PipeMethods, UsePipe} from "@tsed/common";
import {Format} from "@tsed/schema";

/** Ids are compared as text outside Postgres (rate-limit and cache keys): one spelling, lower case. */
@Injectable()
export class LowerCasePipe implements PipeMethods<unknown, unknown> {
  transform(value: unknown): unknown {
    return typeof value === "string" ? value.toLowerCase() : value;
  }
}

/**
 * A path parameter holding a UUID: validated (canonical 8-4-4-4-12 hex, see strict-formats.ts)
 * and lower-cased, so that `ABC…` and `abc…` are one id everywhere.
 */
export function IdParam(name: string): ParameterDecorator {
  return useDecorators(PathParams(name), Format("uuid"), UsePipe(LowerCasePipe)) as ParameterDecorator;
}
