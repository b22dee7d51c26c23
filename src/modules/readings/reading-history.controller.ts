import {Controller, Get, Inject, QueryParams} from "@tsed/common";
import {Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {HeavyRead} from "../../platform/rate-limit/heavy-read.middleware.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {TemperatureReading} from "./reading.entity.js";
import {ReadingHistoryQuery, ReadingPage} from "./reading-history.models.js";
import {ReadingHistoryService} from "./reading-history.service.js";

@Controller("/devices/:deviceId/readings")
@Name("Readings")
@Authenticated()
export class ReadingHistoryController {
  @Inject()
  private history!: ReadingHistoryService;

  @Get("/")
  @HeavyRead()
  @Summary("History of a device, newest first (keyset pagination)")
  @Description(
    "Pass `nextCursor` as `cursor` for the next page; every page costs the same however deep. `from` is inclusive, `to` exclusive; `minTemp` keeps readings at or above it."
  )
  @Returns(200, ReadingPage)
  @(Returns(400, ErrorBody).Description("Invalid cursor, range or limit"))
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  list(@IdParam("deviceId") deviceId: string, @QueryParams() query: ReadingHistoryQuery) {
    return this.history.page(deviceId, query);
  }

  @Get("/latest")
  @Summary("The newest reading of a device")
  @Returns(200, TemperatureReading)
  @(Returns(404, ErrorBody).Description("No such device in this tenant, or no reading yet"))
  latest(@IdParam("deviceId") deviceId: string) {
    return this.history.latest(deviceId);
  }
}
