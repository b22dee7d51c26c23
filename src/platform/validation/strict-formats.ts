import {Formats, type FormatsMethods} from "@tsed/ajv";

/*
 * The JSON Schema formats the API uses, stricter than ajv-formats where its looser reading lets
 * through a value that JavaScript or Postgres cannot hold (a 500 instead of a 400):
 * - `uuid`: ajv-formats also takes `urn:uuid:…`, which Postgres refuses; hex in either case.
 * - `date-time`: RFC 3339 with a `Z` or `±HH:MM` offset. ajv-formats takes `+05` and a leap second
 *   (`23:59:60`), neither of which `Date` can parse; V8 quietly rolls `2026-02-30` over to March.
 * - `date`: a real calendar day; ajv-formats takes year 0000, which Postgres refuses.
 * Years 0001–9999 only, as Postgres and `toISOString` both write them.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;

function isCalendarDay(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

export function isStrictDate(value: string): boolean {
  const m = DATE.exec(value);
  return m !== null && isCalendarDay(Number(m[1]), Number(m[2]), Number(m[3]));
}

export function isStrictDateTime(value: string): boolean {
  const m = DATE_TIME.exec(value);
  if (!m || !isCalendarDay(Number(m[1]), Number(m[2]), Number(m[3]))) return false;
  const [hour, minute, second, offsetHour, offsetMinute] = [m[4], m[5], m[6], m[7] ?? "0", m[8] ?? "0"].map(Number) as [
    number,
    number,
    number,
    number,
    number
  ];
  return hour <= 23 && minute <= 59 && second <= 59 && offsetHour <= 23 && offsetMinute <= 59 && Number.isFinite(Date.parse(value));
}

@Formats("uuid", {type: "string"})
export class UuidFormat implements FormatsMethods<string> {
  validate(value: string): boolean {
    return UUID.test(value);
  }
}

@Formats("date-time", {type: "string"})
export class DateTimeFormat implements FormatsMethods<string> {
  validate(value: string): boolean {
    return isStrictDateTime(value);
  }
}

@Formats("date", {type: "string"})
export class DateFormat implements FormatsMethods<string> {
  validate(value: string): boolean {
    return isStrictDate(value);
  }
}
