import {Controller, Get, Inject, Post, QueryParams} from "@tsed/common";
import {Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {Alert} from "./alert.entity.js";
import {AlertQuery} from "./alert.models.js";
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

  @Post("/alerts/:alertId/acknowledge")
  @Summary("Acknowledge an alert (records who and when)")
  @(Returns(200, Alert).Description("The alert; acknowledging again keeps the first acknowledgement"))
  @(Returns(404, ErrorBody).Description("No such alert in this tenant"))
  acknowledge(@IdParam("alertId") alertId: string) {
    return this.alerts.acknowledge(alertId);
  }
}
