/**
 * The server reads its own clock (local "today", the current local hour), so a test that computes
 * the same thing from its own reading of the clock disagrees with it whenever a boundary passes in
 * between: at local midnight, at the top of the local hour. Tests read the clock once and pick a
 * tenant timezone in which that instant is far from the boundary they depend on, so the few
 * seconds a test takes can never cross it, whatever time the suite runs at.
 */

const MINUTE = 60_000;

/** Whole-hour zones from UTC−12 to UTC+14, as IANA names Postgres and Intl both know (`Etc/GMT-5` is UTC+5). */
const WHOLE_HOUR_ZONES = Array.from({length: 27}, (_, i) => i - 12).map((offsetHours) => ({
  zone: offsetHours === 0 ? "Etc/GMT" : `Etc/GMT${offsetHours > 0 ? "-" : "+"}${Math.abs(offsetHours)}`,
  offsetHours
}));

export interface ZoneChoice {
  zone: string;
  offsetHours: number;
  /** The local date of `now` in the zone. */
  localDate: string;
  /** Minutes from `now` to the nearer local midnight (before or after). */
  marginMinutes: number;
}

/**
 * The whole-hour zone in which `now` is farthest from a local midnight (about noon there: 11 hours
 * or more either way). With `dateDiffersFromUtc`, only zones whose local date is not the UTC date
 * (a tenant's "yesterday" then differs from UTC's); at least an hour of margin remains.
 */
export function zoneFarFromMidnight(now: Date, options: {dateDiffersFromUtc?: boolean} = {}): ZoneChoice {
  const utcDate = now.toISOString().slice(0, 10);
  const choices = WHOLE_HOUR_ZONES.map(({zone, offsetHours}) => {
    const local = new Date(now.getTime() + offsetHours * 60 * MINUTE);
    const minuteOfDay = local.getUTCHours() * 60 + local.getUTCMinutes() + local.getUTCSeconds() / 60;
    return {zone, offsetHours, localDate: local.toISOString().slice(0, 10), marginMinutes: Math.min(minuteOfDay, 24 * 60 - minuteOfDay)};
  }).filter((choice) => !options.dateDiffersFromUtc || choice.localDate !== utcDate);
  const best = choices.reduce((a, b) => (b.marginMinutes > a.marginMinutes ? b : a));
  if (best.marginMinutes < 55) throw new Error(`no zone is an hour away from midnight at ${now.toISOString()} (a bug in this helper)`);
  return best;
}

/** Zones whose hours start at a fixed minute past the UTC hour, without DST. */
const OFFSET_HOUR_ZONES = [
  {zone: "Asia/Kolkata", offset: "+05:30", startMinute: 30},
  {zone: "Asia/Kathmandu", offset: "+05:45", startMinute: 15}
];

/**
 * A zone whose local hours do not start on the UTC hour (so hourly buckets are cut in the zone,
 * not in UTC), picked so that `now` is at least 7.5 minutes from the start of a local hour.
 */
export function zoneFarFromLocalHour(now: Date): {zone: string; offset: string; startMinute: number; marginMinutes: number} {
  const minute = now.getUTCMinutes() + now.getUTCSeconds() / 60;
  const distance = (startMinute: number) => {
    const d = Math.abs(minute - startMinute) % 60;
    return Math.min(d, 60 - d);
  };
  const best = OFFSET_HOUR_ZONES.map((z) => ({...z, marginMinutes: distance(z.startMinute)})).reduce((a, b) =>
    b.marginMinutes > a.marginMinutes ? b : a
  );
  return best;
}
