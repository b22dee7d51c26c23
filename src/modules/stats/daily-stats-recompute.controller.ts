import {BodyParams, Controller, Get, Inject, PathParams, Post} from "@tsed/common";
import {Description, Name, Pattern, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {AggregationAccepted, AggregationRequest, AggregationStatusBody, JOB_ID_PATTERN} from "./daily-stats-recompute.models.js";
import {DailyStatsRecomputeJobsService} from "./daily-stats-recompute-jobs.service.js";

@Controller("/admin/aggregations")
@Name("Admin")
@Authenticated({role: "admin"})
export class DailyStatsRecomputeController {
  @Inject()
  private aggregations!: DailyStatsRecomputeJobsService;

  @Inject()
  private tenant!: TenantContext;

  @Post("/")
  @Summary("Recompute the caller's tenant's DailyStats for a local day")
  @Description("Enqueues a BullMQ job; poll `GET /admin/aggregations/{jobId}` for its state and progress.")
  @Returns(202, AggregationAccepted)
  @(Returns(400, ErrorBody).Description("Invalid or future date"))
  @(Returns(503, ErrorBody).Description("The job queue (Redis) is unavailable"))
  async enqueue(@BodyParams() body: AggregationRequest) {
    return this.aggregations.enqueue(this.tenant.tenantId, body?.date);
  }

  @Get("/:jobId")
  @Summary("State and progress of an aggregation job of the caller's tenant")
  @Returns(200, AggregationStatusBody)
  @(Returns(400, ErrorBody).Description("Malformed job id"))
  @(Returns(404, ErrorBody).Description("No such job for this tenant"))
  @(Returns(503, ErrorBody).Description("The job queue (Redis) is unavailable"))
  status(@PathParams("jobId") @Pattern(JOB_ID_PATTERN) jobId: string) {
    return this.aggregations.status(this.tenant.tenantId, jobId);
  }
}
