import {BodyParams, Controller, Delete, Get, Inject, Post, QueryParams} from "@tsed/common";
import {Name, Required, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {Silence, SilenceCreate, SilencePage, SilenceQuery} from "./silence.models.js";
import {SilenceService} from "./silence.service.js";

@Controller("/silences")
@Name("Alerts")
@Authenticated()
export class SilenceController {
  @Inject()
  private silences!: SilenceService;

  @Post("/")
  @Summary("Hold back webhook notifications of a device's, a rule's or (admin) the whole tenant's alerts, for at most 7 days")
  @Returns(201, Silence)
  @(Returns(400, ErrorBody).Description("Longer than 7 days, already over, no comment, or a rule of another device"))
  @(Returns(404, ErrorBody).Description("No such device or rule in this tenant"))
  create(@BodyParams() @Required() body: SilenceCreate) {
    return this.silences.create(body);
  }

  @Get("/")
  @Summary("The tenant's silences, newest first")
  @Returns(200, SilencePage)
  @Returns(400, ErrorBody)
  list(@QueryParams() query: SilenceQuery) {
    return this.silences.list(query);
  }

  @Delete("/:id")
  @Summary("End a silence now (the row stays, with endsAt = now)")
  @Returns(200, Silence)
  @(Returns(404, ErrorBody).Description("No such silence in this tenant"))
  end(@IdParam("id") id: string) {
    return this.silences.end(id);
  }
}
