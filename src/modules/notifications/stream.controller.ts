import {Context, Controller, Get, HeaderParams, Inject, QueryParams, UseBefore} from "@tsed/common";
import {Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {StreamHub} from "./stream-hub.service.js";
import {StreamQuery} from "./stream.models.js";
import {StreamTokenMiddleware} from "./stream-token.middleware.js";

@Controller("/stream")
@Name("Alerts")
@UseBefore(StreamTokenMiddleware)
@Authenticated()
export class StreamController {
  @Inject()
  private hub!: StreamHub;

  @Inject()
  private tenant!: TenantContext;

  @Get("/")
  @Summary("Live events of the tenant (Server-Sent Events)")
  @Description(
    "`text/event-stream`: each event has an `id` (increasing per tenant), an `event` (its type) and `data` (its JSON body). " +
      "Send `Last-Event-ID` (EventSource does on reconnecting) to get what was missed in the last 10 minutes or more; further back, " +
      'an `event: reset` says to reload over REST. Browsers: `?streamToken=` from `POST /api/v1/stream/tokens`. See docs/api.md, "Live stream".'
  )
  @(Returns(200, String).ContentType("text/event-stream"))
  @(Returns(429, ErrorBody).Description("The tenant has STREAM_MAX_PER_TENANT streams open"))
  @(Returns(503, ErrorBody).Description("Redis is unavailable"))
  async stream(
    @QueryParams() query: StreamQuery,
    @HeaderParams("last-event-id") lastEventId: string | undefined,
    @Context() $ctx: Context
  ) {
    await this.hub.serve(
      this.tenant.tenantId,
      {deviceId: query.deviceId?.toLowerCase(), types: query.types?.split(",")},
      lastEventId?.trim() || query.lastEventId,
      $ctx.response.raw
    );
  }
}
