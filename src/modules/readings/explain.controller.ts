import {Controller, Get, Inject, QueryParams} from "@tsed/common";
import {Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {HeavyRead} from "../../platform/rate-limit/heavy-read.middleware.js";
import {ExplainReadingsQuery, ExplainResult} from "./reading-history.models.js";
import {ReadingHistoryService} from "./reading-history.service.js";

@Controller("/admin/explain")
@Name("Admin")
@Authenticated({role: "admin"})
export class ExplainController {
  @Inject()
  private history!: ReadingHistoryService;

  @Get("/readings")
  @HeavyRead()
  @Summary("Postgres' plan of the history query")
  @Description(
    "The plan (JSON) of the statement `GET /devices/{deviceId}/readings` runs: expect an Index Scan (Backward) on the (device_id, recorded_at) primary key of each monthly partition the range reaches (the others are pruned), in an ordered Append, never a Seq Scan or a Sort."
  )
  @Returns(200, ExplainResult)
  @(Returns(400, ErrorBody).Description("Invalid device id or instant"))
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  readings(@QueryParams() query: ExplainReadingsQuery) {
    return this.history.explain(query.deviceId, query.from, query.analyze);
  }
}
