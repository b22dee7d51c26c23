import type {NextFunction, Request, Response} from "express";
import {logger} from "@tsed/common";
import {httpRequestDuration} from "./metrics.js";

const QUIET = /^\/(health|metrics|doc)(\/|$)/;

/**
 * One structured log line and one histogram sample per request: request id, tenant, route
 * template (never the raw URL with ids, never headers, so no token reaches the logs), status and
 * duration. Ts.ED 8 no longer logs requests by itself.
 */
export function requestObserver(req: Request, res: Response, next: NextFunction) {
  const started = process.hrtime.bigint();
  res.on("finish", () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : "unmatched";
    httpRequestDuration.observe({method: req.method, route, status: String(res.statusCode)}, seconds);
    if (QUIET.test(req.path) && res.statusCode < 500) return;
    const $ctx = (req as {$ctx?: {id?: string; get(key: string): unknown}}).$ctx;
    const entry = {
      event: "request",
      reqId: $ctx?.id,
      tenantId: $ctx?.get("tenantId"),
      method: req.method,
      route,
      status: res.statusCode,
      durationMs: Math.round(seconds * 1000 * 10) / 10
    };
    if (res.statusCode >= 500) logger().error(entry);
    else logger().info(entry);
  });
  next();
}
