import {Controller, Get, Inject} from "@tsed/common";
import {Name, Returns, Summary} from "@tsed/schema";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {User} from "./user.entity.js";
import {UserService} from "./user.service.js";

@Controller("/me")
@Name("Me")
@Authenticated()
export class MeController {
  @Inject()
  private users!: UserService;

  @Get("/")
  @Summary("The caller's user in the tenant (created from the token on first use)")
  @Returns(200, User)
  me() {
    return this.users.current();
  }
}
