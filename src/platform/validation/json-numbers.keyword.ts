import {Keyword, type KeywordMethods} from "@tsed/ajv";
import {CustomKey} from "@tsed/schema";
import type {AnySchemaObject, ErrorObject} from "ajv";

export const JSON_NUMBERS = "jsonNumbers";

/**
 * The API's AJV coerces types (Ts.ED's default `coerceTypes: true`), so a temperature sent as
 * `null`, `true` or `"21.5"` would be accepted as 0, 1 or 21.5 °C — a failed sensor would report
 * freezing and fire `below` alerts. Put on a model class, this keyword names numeric fields that
 * must arrive as JSON numbers (or null where the field is nullable). It is checked on the object,
 * which AJV does before it validates (and coerces) the object's properties.
 */
export function JsonNumbers(...properties: string[]): ClassDecorator {
  return CustomKey(JSON_NUMBERS, properties) as ClassDecorator;
}

type DataContext = {instancePath?: string};
type CompiledCheck = ((data: unknown, dataCxt?: DataContext) => boolean) & {errors?: Partial<ErrorObject>[] | null};

@Keyword({keyword: JSON_NUMBERS, schemaType: "array"})
export class JsonNumbersKeyword implements KeywordMethods {
  compile(properties: string[], parentSchema: AnySchemaObject) {
    const nullable = new Set(properties.filter((name) => allowsNull(parentSchema.properties?.[name])));
    const check: CompiledCheck = (data, dataCxt) => {
      if (!data || typeof data !== "object" || Array.isArray(data)) return true;
      const record = data as Record<string, unknown>;
      // Runs once per item of a 1,000-reading batch: allocate only when something is wrong.
      let errors: Partial<ErrorObject>[] | null = null;
      for (const name of properties) {
        const value = record[name];
        if (value === undefined && !(name in record)) continue;
        if (typeof value === "number" || (value === null && nullable.has(name))) continue;
        (errors ??= []).push({
          keyword: JSON_NUMBERS,
          instancePath: `${dataCxt?.instancePath ?? ""}/${name}`,
          message: nullable.has(name) ? "must be a JSON number or null" : "must be a JSON number",
          params: {type: value === null ? "null" : typeof value}
        });
      }
      check.errors = errors;
      return errors === null;
    };
    return check;
  }
}

function allowsNull(schema: unknown): boolean {
  const {type, nullable} = (schema ?? {}) as {type?: unknown; nullable?: unknown};
  return nullable === true || type === "null" || (Array.isArray(type) && type.includes("null"));
}
