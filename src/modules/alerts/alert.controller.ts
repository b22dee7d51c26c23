import {BodyParams, Controller, Get, Inject, Post, QueryParams} from "@tsed/common";
import {Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {Alert} from "./alert.entity.js";
import {AcknowledgeBody, AlertPage, AlertQuery, TenantAlertQuery} from "./alert.models.js";
import {AlertService} from "./alert.service.js";

@Controller("/")
@Name("Alerts")
@Authenticated()
export class AlertController {
  @Inject()
  private alerts!: AlertService;

  @Get("/devices/:deviceId/alerts")
  @Summary("The device's alerts, newest first (at most 50)")
  @(Returns(200, Array).Of(Alert))
  @Returns(400, ErrorBody)
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  list(@IdParam("deviceId") deviceId: string, @QueryParams() query: AlertQuery) {
    return this.alerts.listForDevice(deviceId, query);
  }

  @Get("/alerts")
  @Summary("The tenant's alerts across devices, newest first, a page at a time")
  @Description(
    "Filters combine: `open` (neither resolved nor retracted), `acknowledged`, `severity`. Ordered by firedAt, then id, newest first; retracted alerts are listed (with retractedAt) unless `open=true`."
  )
  @Returns(200, AlertPage)
  @(Returns(400, ErrorBody).Description("A filter or the page out of range"))
  listForTenant(@QueryParams() query: TenantAlertQuery) {
    return this.alerts.list(query);
  }

  @Post("/alerts/:alertId/acknowledge")
  @Summary("Acknowledge an alert (records who and when)")
  @Description(
    'The body is optional: `{"comment": "…"}` is kept with the acknowledgement. Only the first acknowledgement counts: it bumps the alert\'s `version` and announces `alert.acknowledged`; a later one changes nothing (its comment is ignored) and answers the alert as it is.'
  )
  @(Returns(200, Alert).Description("The alert; acknowledging again keeps the first acknowledgement"))
  @(Returns(400, ErrorBody).Description("The comment is longer than 500 characters, or the body is not an object"))
  @(Returns(404, ErrorBody).Description("No such alert in this tenant"))
  acknowledge(@IdParam("alertId") alertId: string, @BodyParams() body: AcknowledgeBody) {
    return this.alerts.acknowledge(alertId, body?.comment ?? null);
  }
}
