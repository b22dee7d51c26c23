import {BodyParams, Controller, Delete, Get, Inject, Patch, Post, QueryParams} from "@tsed/common";
import {Description, Groups, Name, Required, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {PageQuery} from "../../common/pagination.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {Device} from "./device.entity.js";
import {DevicePage} from "./device.models.js";
import {DeviceService} from "./device.service.js";

@Controller("/devices")
@Name("Devices")
@Authenticated()
export class DeviceController {
  @Inject()
  private devices!: DeviceService;

  @Post("/")
  @Summary("Register a device")
  @Returns(201, Device)
  @(Returns(400, ErrorBody).Description("Invalid body"))
  @(Returns(409, ErrorBody).Description("The serial number is already registered in this tenant"))
  create(@BodyParams() @Required() @Groups("create") body: Device) {
    return this.devices.register(body);
  }

  @Get("/")
  @Summary("Active devices, newest first")
  @Returns(200, DevicePage)
  @Returns(400, ErrorBody)
  list(@QueryParams() query: PageQuery) {
    return this.devices.list(query.page, query.pageSize);
  }

  @Get("/:deviceId")
  @Summary("One device (also an inactive one)")
  @Returns(200, Device)
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  get(@IdParam("deviceId") deviceId: string) {
    return this.devices.get(deviceId);
  }

  @Patch("/:deviceId")
  @Summary("Change name, location or isActive")
  @Returns(200, Device)
  @Returns(400, ErrorBody)
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  update(@IdParam("deviceId") deviceId: string, @BodyParams() @Required() @Groups("update") body: Device) {
    return this.devices.update(deviceId, body);
  }

  @Delete("/:deviceId")
  @Summary("Deactivate a device")
  @Description("The device and its readings stay; it leaves the list and accepts no more readings. Idempotent.")
  @Returns(204)
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  async remove(@IdParam("deviceId") deviceId: string): Promise<void> {
    await this.devices.deactivate(deviceId);
  }
}
