import {Context, Controller, Get, Inject, QueryParams} from "@tsed/common";
import {Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {RAW_RETENTION_HEADER_DOCS, rawRetentionHeaders} from "../../common/raw-retention.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {HeavyRead} from "../../platform/rate-limit/heavy-read.middleware.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {DailyStats} from "./daily-stats.entity.js";
import {DailyStatsQuery, HourlyQuery, HourlyStats, WeeklyStats} from "./stats.models.js";
import {StatsService} from "./stats.service.js";

@Controller("/devices/:deviceId/stats")
@Name("Stats")
@Authenticated()
export class StatsController {
  @Inject()
  private stats!: StatsService;

  @Get("/daily")
  @Summary("DailyStats rows of a device")
  @Description(
    "Local days of the tenant's timezone, both ends inclusive, oldest first. Days without readings have no row. " +
      "DailyStats outlive the raw retention; with one, the `Raw-Retention-*` headers say whether the range reaches back to days whose raw readings are gone (their rows can no longer be recomputed)."
  )
  @(Returns(200, Array).Of(DailyStats).Headers(RAW_RETENTION_HEADER_DOCS))
  @(Returns(400, ErrorBody).Description("Invalid date or range"))
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  async daily(@IdParam("deviceId") deviceId: string, @QueryParams() query: DailyStatsQuery, @Context() $ctx: Context) {
    const {rows, rawRetention} = await this.stats.daily(deviceId, query.from, query.to);
    $ctx.response.setHeaders(rawRetentionHeaders(rawRetention));
    return rows;
  }

  @Get("/weekly")
  @Summary("The last 7 local days of a device (cached)")
  @Description("Served from Redis when cached; any change to the device's DailyStats invalidates it.")
  @Returns(200, WeeklyStats)
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  weekly(@IdParam("deviceId") deviceId: string) {
    return this.stats.weekly(deviceId);
  }

  @Get("/hourly")
  @HeavyRead()
  @Summary("Hourly avg/min/max/count from the raw readings")
  @Description("Buckets are local hours of the tenant's timezone; hours without readings are absent.")
  @Returns(200, HourlyStats)
  @Returns(400, ErrorBody)
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  hourly(@IdParam("deviceId") deviceId: string, @QueryParams() query: HourlyQuery) {
    return this.stats.hourly(deviceId, query.hours);
  }
}
