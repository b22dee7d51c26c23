import type {Feature} from "../../common/feature.js";
// A caller check the tenant middleware finds by its DI type (components scan is disabled): a deleted user gets 403 everywhere.
import "./caller-users.js";
import {AdminUsersController} from "./admin-users.controller.js";
import {MeController} from "./me.controller.js";
import {User} from "./user.entity.js";

/** The people of a tenant, created from their tokens; admins list and (soft-)delete them. */
export const usersFeature: Feature = {
  name: "users",
  controllers: [MeController, AdminUsersController],
  tenantEntities: [User]
};
