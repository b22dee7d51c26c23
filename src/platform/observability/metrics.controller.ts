import {Controller} from "@tsed/di";
import {Context} from "@tsed/platform-params";
import {ContentType, Get, Name, Returns, Summary} from "@tsed/schema";
import {metricsRegistry} from "./metrics.js";

@Controller("/metrics")
@Name("Metrics")
export class MetricsController {
  @Get("/")
  @Summary("Prometheus metrics (request latency, ingested readings, alerts opened, job durations)")
  @ContentType("text/plain")
  @(Returns(200, String).ContentType("text/plain"))
  async metrics(@Context() $ctx: Context): Promise<string> {
    $ctx.response.contentType(metricsRegistry.contentType);
    return metricsRegistry.metrics();
  }
}
