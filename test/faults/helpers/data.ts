import pg from "pg";

/** Inserts `devices` × `perDevice` readings (every 30 s from `dayStart`, UTC) with one set-based statement per call. */
export async function insertDayOfReadings(client: pg.Client, tenant: string, deviceIds: string[], dayStart: Date, perDevice: number) {
  await client.query(
    `insert into "${tenant}".temperature_readings (device_id, temperature_celsius, humidity, recorded_at)
     select d.id, 15 + (random() * 10)::numeric(5,2), 50, $2::timestamptz + (s * interval '30 seconds')
     from unnest($1::uuid[]) as d(id), generate_series(0, $3 - 1) as s`,
    [deviceIds, dayStart.toISOString(), perDevice]
  );
}

/** The daily figures computed straight from the raw readings: the reference an aggregation must match. */
export async function expectedDailyStats(client: pg.Client, tenant: string, dayStart: Date) {
  const rows = await client.query(
    `select device_id::text as "deviceId", count(*)::int as "readingCount", min(temperature_celsius) as min, max(temperature_celsius) as max, avg(temperature_celsius) as avg
     from "${tenant}".temperature_readings where recorded_at >= $1 and recorded_at < $1::timestamptz + interval '1 day'
     group by device_id order by device_id`,
    [dayStart.toISOString()]
  );
  return rows.rows as {deviceId: string; readingCount: number; min: number; max: number; avg: number}[];
}

export async function storedDailyStats(analytics: pg.Client, tenant: string, date: string) {
  const rows = await analytics.query(
    `select device_id::text as "deviceId", reading_count as "readingCount", min_temperature_celsius as min, max_temperature_celsius as max, avg_temperature_celsius as avg
     from daily_stats where tenant_id = $1 and date = $2 order by device_id`,
    [tenant, date]
  );
  return rows.rows as {deviceId: string; readingCount: number; min: number; max: number; avg: number}[];
}

/** Same devices, counts, min and max; averages equal up to float summation order (1e-9 relative). */
export function sameDailyStats(
  stored: Awaited<ReturnType<typeof storedDailyStats>>,
  expected: Awaited<ReturnType<typeof expectedDailyStats>>
): boolean {
  if (stored.length !== expected.length) return false;
  return stored.every((row, i) => {
    const want = expected[i]!;
    return (
      row.deviceId === want.deviceId &&
      row.readingCount === want.readingCount &&
      row.min === want.min &&
      row.max === want.max &&
      Math.abs(row.avg - want.avg) <= 1e-9 * Math.abs(want.avg)
    );
  });
}
