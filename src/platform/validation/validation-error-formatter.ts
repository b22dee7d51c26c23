import type {ErrorObject} from "ajv";

/** Longest rejected value a validation message quotes. */
const MAX_QUOTED = 60;

type FormattedError = ErrorObject & {modelName?: string; collectionName?: string; dataPath?: string};

/**
 * One line of a 400's message per invalid field: `TemperatureReading.temperatureCelsius must be <= 1000.
 * Given value: 5000`. Ts.ED's default formatter JSON-stringifies the whole rejected value into the
 * message: a large value made a large answer, and a deeply nested one overflowed the stack (a 500).
 * This one quotes scalars up to MAX_QUOTED characters and names the type of anything else.
 */
export function validationErrorFormatter(error: FormattedError): string {
  const path =
    error.params && "missingProperty" in error.params
      ? `.${String(error.params.missingProperty)}`
      : (error.dataPath ?? error.instancePath ?? "").replace(/\//g, ".");
  return `${error.modelName ?? "Value"}${path} ${error.message ?? "is invalid"}. Given value: ${quote(error.data)}`;
}

function quote(value: unknown): string {
  if (value === undefined) return "undefined";
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
  return Array.isArray(value) ? `an array of ${value.length}` : `an ${typeof value}`;
}
