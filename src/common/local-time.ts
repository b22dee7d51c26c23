/**
 * Local days and hours of a tenant's IANA timezone. A local day is not 24 hours long on a DST
 * change (23 or 25 hours), so day boundaries are always computed in the zone, never by adding
 * 86,400 seconds; SQL does the same with `(day::timestamp at time zone tz)`.
 */

/** A name the JS runtime understands (Postgres is asked too before one is stored). */
export function isKnownToIntl(timeZone: unknown): timeZone is string {
  if (typeof timeZone !== "string" || !/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(timeZone)) return false;
  try {
    new Intl.DateTimeFormat("en", {timeZone});
    return true;
  } catch {
    return false;
  }
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();
const offsetFormats = new Map<string, Intl.DateTimeFormat>();

function cached(map: Map<string, Intl.DateTimeFormat>, timeZone: string, make: () => Intl.DateTimeFormat) {
  let format = map.get(timeZone);
  if (!format) {
    format = make();
    map.set(timeZone, format);
  }
  return format;
}

/** The local date (YYYY-MM-DD) of `instant` in `timeZone`. */
export function localDate(instant: Date, timeZone: string): string {
  // en-CA formats dates as YYYY-MM-DD.
  return cached(
    dayFormats,
    timeZone,
    () => new Intl.DateTimeFormat("en-CA", {timeZone, year: "numeric", month: "2-digit", day: "2-digit"})
  ).format(instant);
}

/** Calendar arithmetic on a YYYY-MM-DD date (no timezone involved). */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** `instant` as local wall time with its offset, e.g. `2026-03-29T03:00:00+02:00`. */
export function localIsoString(instant: Date, timeZone: string): string {
  const parts = cached(
    offsetFormats,
    timeZone,
    () =>
      new Intl.DateTimeFormat("en-CA", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        timeZoneName: "longOffset"
      })
  ).formatToParts(instant);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? "";
  // "GMT+05:30", or "GMT" for a zero offset.
  const offset = part("timeZoneName").replace(/^GMT/, "") || "+00:00";
  return `${part("year")}-${part("month")}-${part("day")}T${part("hour")}:${part("minute")}:${part("second")}${offset}`;
}

/** The start of the local hour of `instant` in `timeZone` (not always a whole UTC hour: Asia/Kolkata's start at :30). */
export function localHourStart(instant: Date, timeZone: string): Date {
  const wall = localIsoString(instant, timeZone);
  const minutes = Number(wall.slice(14, 16));
  const seconds = Number(wall.slice(17, 19));
  return new Date(instant.getTime() - (minutes * 60 + seconds) * 1000 - instant.getUTCMilliseconds());
}
