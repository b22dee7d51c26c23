import {BodyParams, Controller, Delete, Get, Inject, Patch, Post, QueryParams} from "@tsed/common";
import {Description, Name, Required, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {
  DeliveryPage,
  DeliveryQuery,
  DeliveryReplayed,
  EventAccepted,
  WebhookEndpoint,
  WebhookEndpointCreate,
  WebhookEndpointCreated,
  WebhookEndpointList,
  WebhookEndpointUpdate,
  WebhookSecretRotated
} from "./webhook.models.js";
import {WebhookService} from "./webhook.service.js";

@Controller("/admin/webhooks")
@Name("Admin")
@Authenticated({role: "admin"})
export class WebhookController {
  @Inject()
  private webhooks!: WebhookService;

  @Post("/")
  @Summary("Register a webhook endpoint")
  @Description('The answer holds the signing `secret`, shown this once. See docs/api.md, "Receiving webhooks", for verifying signatures.')
  @Returns(201, WebhookEndpointCreated)
  @(Returns(400, ErrorBody).Description("Invalid URL (not https, not public, longer than 2,000 characters) or event types"))
  @(Returns(409, ErrorBody).Description("The tenant has 20 endpoints already"))
  create(@BodyParams() @Required() body: WebhookEndpointCreate) {
    return this.webhooks.create(body);
  }

  @Get("/")
  @Summary("The tenant's webhook endpoints (without secrets)")
  @Returns(200, WebhookEndpointList)
  async list() {
    return {items: await this.webhooks.list()};
  }

  @Get("/:id")
  @Summary("One webhook endpoint")
  @Returns(200, WebhookEndpoint)
  @(Returns(404, ErrorBody).Description("No such endpoint in this tenant"))
  get(@IdParam("id") id: string) {
    return this.webhooks.get(id);
  }

  @Patch("/:id")
  @Summary("Change an endpoint: url, eventTypes, description, isEnabled (with disabledReason)")
  @Returns(200, WebhookEndpoint)
  @Returns(400, ErrorBody)
  @(Returns(404, ErrorBody).Description("No such endpoint in this tenant"))
  update(@IdParam("id") id: string, @BodyParams() @Required() body: WebhookEndpointUpdate) {
    return this.webhooks.update(id, body);
  }

  @Delete("/:id")
  @Summary("Delete an endpoint and its delivery log")
  @Returns(204)
  @(Returns(404, ErrorBody).Description("No such endpoint in this tenant"))
  async remove(@IdParam("id") id: string) {
    await this.webhooks.remove(id);
  }

  @Post("/:id/rotate-secret")
  @Summary("Replace the signing secret; the old one keeps signing beside it for 24 h")
  @Returns(200, WebhookSecretRotated)
  @(Returns(404, ErrorBody).Description("No such endpoint in this tenant"))
  rotate(@IdParam("id") id: string) {
    return this.webhooks.rotateSecret(id);
  }

  @Post("/:id/test")
  @Summary("Send a `webhook.test` event to this endpoint")
  @Returns(202, EventAccepted)
  @(Returns(404, ErrorBody).Description("No such endpoint in this tenant"))
  test(@IdParam("id") id: string) {
    return this.webhooks.sendTest(id);
  }

  @Get("/:id/deliveries")
  @Summary("The endpoint's delivery log, newest first: every attempt with its time, status code or error, and duration")
  @Returns(200, DeliveryPage)
  @Returns(400, ErrorBody)
  @(Returns(404, ErrorBody).Description("No such endpoint in this tenant"))
  deliveries(@IdParam("id") id: string, @QueryParams() query: DeliveryQuery) {
    return this.webhooks.deliveries(id, query);
  }

  @Post("/:id/deliveries/:eventId/replay")
  @Summary("Send an event to the endpoint again, now")
  @Returns(202, DeliveryReplayed)
  @(Returns(404, ErrorBody).Description("No such endpoint or event in this tenant"))
  replay(@IdParam("id") id: string, @IdParam("eventId") eventId: string) {
    return this.webhooks.replay(id, eventId);
  }
}
