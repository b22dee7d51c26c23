import {timingSafeEqual} from "node:crypto";
import type {AppConfig} from "../../config/app-config.js";

/**
 * Who may read Prometheus metrics: with METRICS_TOKEN set, only a request carrying
 * `Authorization: Bearer <METRICS_TOKEN>`; without it, anyone in development and test, and nobody
 * in production (metrics name tenants' traffic and the process' internals: fail closed).
 */
export function metricsServed(config: Pick<AppConfig, "nodeEnv" | "metricsToken">): boolean {
  return config.metricsToken !== null || config.nodeEnv !== "production";
}

/** Whether an Authorization header grants the metrics (in constant time, so its timing tells nothing of the token). */
export function mayReadMetrics(config: Pick<AppConfig, "metricsToken">, authorization: string | undefined): boolean {
  if (config.metricsToken === null) return true;
  const given = Buffer.from(authorization ?? "");
  const expected = Buffer.from(`Bearer ${config.metricsToken}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
