import {BodyParams, Controller, Delete, Get, Inject, Patch, Post, QueryParams} from "@tsed/common";
import {Description, Groups, Name, Required, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {PageQuery} from "../../common/pagination.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {HeavyRead} from "../../platform/rate-limit/heavy-read.middleware.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {BacktestRequest, BacktestResult, MAX_BACKTEST_DAYS} from "./alert-backtest.models.js";
import {AlertBacktestService} from "./alert-backtest.service.js";
import {AlertRule} from "./alert-rule.entity.js";
import {AlertRuleService, MAX_RULES_PER_DEVICE} from "./alert-rule.service.js";
import {AlertRulePage} from "./alert.models.js";

@Controller("/")
@Name("Alerts")
@Authenticated()
export class AlertRuleController {
  @Inject()
  private rules!: AlertRuleService;

  @Inject()
  private backtests!: AlertBacktestService;

  @Post("/devices/:deviceId/alert-rules")
  @Summary("Add an alert rule to a device")
  @Returns(201, AlertRule)
  @(Returns(400, ErrorBody).Description(
    "Invalid body: a field out of range, a threshold rule without condition or threshold, a no_data rule without silenceSeconds or with threshold fields"
  ))
  @(Returns(404, ErrorBody).Description("No active device with this id in the tenant"))
  @(Returns(409, ErrorBody).Description(
    `The device has ${MAX_RULES_PER_DEVICE} rules already (deleted ones not counted), the most it may have`
  ))
  create(@IdParam("deviceId") deviceId: string, @BodyParams() @Required() @Groups("create") body: AlertRule) {
    return this.rules.create(deviceId, body);
  }

  @Post("/devices/:deviceId/alert-rules/backtest")
  // Up to a month of one device's readings in one query: a heavy read of the tenant (at most TENANT_HEAVY_READS at once).
  @HeavyRead()
  @Summary("What a rule would have done over the device's stored readings in [from, to)")
  @Description(
    "Runs the live state machine over the stored readings (threshold) or arrivals (no_data), as if the rule had existed since `from`; stores and sends nothing. " +
      `The body is a rule's (as for adding one) plus \`from\` and \`to\`: at most ${MAX_BACKTEST_DAYS} days apart, \`from\` within the tenant's raw retention.`
  )
  @Returns(200, BacktestResult)
  @(Returns(400, ErrorBody).Description(
    "Invalid rule fields (as for adding a rule), `from` not before `to`, a range longer than 31 days, or `from` before the raw retention"
  ))
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  backtest(@IdParam("deviceId") deviceId: string, @BodyParams() @Required() body: BacktestRequest) {
    return this.backtests.run(deviceId, body);
  }

  @Get("/devices/:deviceId/alert-rules")
  @Summary("The device's alert rules, oldest first, a page at a time (deleted rules are not listed)")
  @Returns(200, AlertRulePage)
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  list(@IdParam("deviceId") deviceId: string, @QueryParams() query: PageQuery) {
    return this.rules.listForDevice(deviceId, query.page, query.pageSize);
  }

  @Patch("/alert-rules/:ruleId")
  @Summary("Change a rule's fields (not its kind)")
  @Description(
    "Only the fields sent change. Disabling the rule or changing how it judges readings (condition, forSeconds, clearDeltaCelsius, silenceSeconds) " +
      "resolves its open alert and evaluates readings from now on; a new threshold keeps the open alert; severity and reminders apply to what comes next."
  )
  @Returns(200, AlertRule)
  @(Returns(400, ErrorBody).Description("A field out of range or out of place for the rule's kind, or an attempt to change the kind"))
  @(Returns(404, ErrorBody).Description("No such rule in this tenant, or it was deleted"))
  update(@IdParam("ruleId") ruleId: string, @BodyParams() @Required() @Groups("update", "partial") body: AlertRule) {
    return this.rules.update(ruleId, body);
  }

  @Delete("/alert-rules/:ruleId")
  @Summary("Delete (archive) a rule; its alerts stay")
  @Description(
    "The rule is archived: it evaluates no more readings, its open alert resolves now, and it no longer appears in rule lists or counts " +
      `towards the device's ${MAX_RULES_PER_DEVICE} rules; any later PATCH or DELETE of it is a 404. Its alerts stay listed under the device's alerts.`
  )
  @Returns(204)
  @(Returns(404, ErrorBody).Description("No such rule in this tenant, or it was deleted already"))
  async remove(@IdParam("ruleId") ruleId: string): Promise<void> {
    await this.rules.remove(ruleId);
  }
}
