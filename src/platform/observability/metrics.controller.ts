import {timingSafeEqual} from "node:crypto";
import {Context, Controller, Get, HeaderParams, Inject} from "@tsed/common";
import {ContentType, Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {NotFoundError, UnauthorizedError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {metricsRegistry} from "./metrics.js";

@Controller("/metrics")
@Name("Metrics")
export class MetricsController {
  @Inject()
  private config!: AppConfig;

  @Get("/")
  @Summary("Prometheus metrics (request latency, ingested readings, alerts opened, job durations)")
  @Description(
    "When METRICS_TOKEN is set, only with `Authorization: Bearer <METRICS_TOKEN>` (Prometheus: `authorization: {credentials: …}` in its scrape config). " +
      "In production without METRICS_TOKEN it is not served at all (404): it fails closed."
  )
  @ContentType("text/plain")
  @(Returns(200, String).ContentType("text/plain"))
  @(Returns(401, ErrorBody).Description("METRICS_TOKEN is set and the request does not carry it"))
  @(Returns(404, ErrorBody).Description("Production without METRICS_TOKEN: metrics are not served"))
  async metrics(@HeaderParams("authorization") authorization: string | undefined, @Context() $ctx: Context): Promise<string> {
    const token = this.config.metricsToken;
    // What the metrics tell (tenants' traffic, error rates) is not for anyone who finds the port.
    if (token === null && this.config.nodeEnv === "production") throw new NotFoundError("Route", "GET /metrics");
    if (token !== null && !sameSecret(authorization ?? "", `Bearer ${token}`)) {
      $ctx.response.setHeader("WWW-Authenticate", 'Bearer realm="metrics"');
      throw new UnauthorizedError("GET /metrics needs the metrics token");
    }
    $ctx.response.contentType(metricsRegistry.contentType);
    return metricsRegistry.metrics();
  }
}

/** Compares in constant time, so that the answer's timing tells nothing of the token. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
