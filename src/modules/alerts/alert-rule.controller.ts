import {Controller, Inject} from "@tsed/di";
import {BodyParams} from "@tsed/platform-params";
import {Delete, Description, Get, Groups, Name, Patch, Post, Required, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {AlertRule} from "./alert-rule.entity.js";
import {AlertRuleService} from "./alert-rule.service.js";

@Controller("/")
@Name("Alerts")
@Authenticated()
export class AlertRuleController {
  @Inject()
  private rules!: AlertRuleService;

  @Post("/devices/:deviceId/alert-rules")
  @Summary("Add an alert rule to a device")
  @Returns(201, AlertRule)
  @(Returns(400, ErrorBody).Description("Invalid body, e.g. an unknown condition"))
  @(Returns(404, ErrorBody).Description("No active device with this id in the tenant"))
  create(@IdParam("deviceId") deviceId: string, @BodyParams() @Required() @Groups("create") body: AlertRule) {
    return this.rules.create(deviceId, body);
  }

  @Get("/devices/:deviceId/alert-rules")
  @Summary("The device's alert rules, oldest first")
  @(Returns(200, Array).Of(AlertRule))
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  list(@IdParam("deviceId") deviceId: string) {
    return this.rules.listForDevice(deviceId);
  }

  @Patch("/alert-rules/:ruleId")
  @Summary("Change condition, threshold or isEnabled")
  @Description("Only the fields sent change. Disabling the rule or changing its condition resolves its open alert.")
  @Returns(200, AlertRule)
  @Returns(400, ErrorBody)
  @(Returns(404, ErrorBody).Description("No such rule in this tenant"))
  update(@IdParam("ruleId") ruleId: string, @BodyParams() @Required() @Groups("update", "partial") body: AlertRule) {
    return this.rules.update(ruleId, body);
  }

  @Delete("/alert-rules/:ruleId")
  @Summary("Delete a rule and its alerts")
  @Returns(204)
  @(Returns(404, ErrorBody).Description("No such rule in this tenant"))
  async remove(@IdParam("ruleId") ruleId: string): Promise<void> {
    await this.rules.remove(ruleId);
  }
}
