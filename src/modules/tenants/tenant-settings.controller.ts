import {BodyParams, Controller, Get, Inject, Patch} from "@tsed/common";
import {Name, Required, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {TenantSettings, TenantSettingsPatch} from "./tenant-settings.models.js";
import {TenantSettingsService} from "./tenant-settings.service.js";

@Controller("/admin/tenant")
@Name("Admin")
@Authenticated({role: "admin"})
export class TenantSettingsController {
  @Inject()
  private settings!: TenantSettingsService;

  @Get("/")
  @Summary("The caller's tenant settings")
  @Returns(200, TenantSettings)
  get() {
    return this.settings.get();
  }

  @Patch("/")
  @Summary("Change the tenant's settings: timezone, raw retention")
  @Returns(200, TenantSettings)
  @(Returns(400, ErrorBody).Description("No setting given, not an IANA timezone name, or a retention out of range"))
  update(@BodyParams() @Required() body: TenantSettingsPatch) {
    return this.settings.update(body);
  }
}
