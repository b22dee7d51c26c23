import {adminControllers} from "./admin/index.js";
import {alertControllers} from "./alerts/index.js";
import {DeviceController} from "./devices/device.controller.js";
import {readingControllers} from "./readings/index.js";
import {statsControllers} from "./stats/index.js";
import {AdminUsersController} from "./users/admin-users.controller.js";
import {MeController} from "./users/me.controller.js";

/** Controllers mounted under /api/v1; each feature lists its own in its index.ts. */
export const apiControllers = [MeController, DeviceController, ...readingControllers, ...alertControllers, ...statsControllers, ...adminControllers, AdminUsersController];
