import {Controller, Delete, Get, Inject, QueryParams} from "@tsed/common";
import {Default, Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {User} from "./user.entity.js";
import {UserService} from "./user.service.js";

@Controller("/admin/users")
@Name("Admin")
@Authenticated({role: "admin"})
export class AdminUsersController {
  @Inject()
  private users!: UserService;

  @Get("/")
  @Summary("Users of the caller's tenant")
  @(Returns(200, Array).Of(User))
  list(@QueryParams("withDeleted") @Default(false) @Description("Include soft-deleted users (audit)") withDeleted: boolean = false) {
    return this.users.list(withDeleted);
  }

  @Delete("/:userId")
  @Summary("Soft-delete a user (GDPR)")
  @Description(
    "The user disappears from every query and its tokens get 403 on every route (every instance within 5 s); its e-mail and name are erased, the row (id, subject) stays for audit."
  )
  @Returns(204)
  @(Returns(404, ErrorBody).Description("No such user in this tenant"))
  async remove(@IdParam("userId") userId: string): Promise<void> {
    await this.users.softDelete(userId);
  }
}
