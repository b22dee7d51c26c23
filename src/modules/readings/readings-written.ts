import {context} from "@tsed/di";

/**
 * What a transaction wrote, for the after-commit stats refresh. The ingestion service records the
 * device, recordedAt and temperature of every reading it inserted (the refresh aggregates these
 * values, it does not read the rows back); the stats hook (AfterTransactionCommit) takes
 * them once the transaction has committed. Kept in the request's (or job's) DI context, so nothing
 * leaks between requests. A transaction writes a device's readings once: what it records for a
 * device replaces what was recorded before, so a retried transaction leaves only what its last,
 * committed attempt inserted (not also the readings of a rolled-back attempt, which a concurrent
 * writer may have stored since).
 */
export interface WrittenReading {
  recordedAt: Date;
  temperatureCelsius: number;
}

export interface ReadingsWritten {
  tenantId: string;
  /** deviceId → the readings inserted for it */
  byDevice: Map<string, readonly WrittenReading[]>;
}

const KEY = "smart-thermo:readingsWritten";

export function recordReadingsWritten(tenantId: string, deviceId: string, readings: readonly WrittenReading[]): void {
  const $ctx = context();
  if (!$ctx) return;
  let written = $ctx.get(KEY) as ReadingsWritten | undefined;
  if (!written || written.tenantId !== tenantId) {
    written = {tenantId, byDevice: new Map()};
    $ctx.set(KEY, written);
  }
  written.byDevice.set(deviceId, readings);
}

/** Returns and clears what was recorded in this context (undefined when nothing was). */
export function takeReadingsWritten(): ReadingsWritten | undefined {
  const $ctx = context();
  const written = $ctx?.get(KEY) as ReadingsWritten | undefined;
  if (written) $ctx!.delete(KEY);
  return written;
}
