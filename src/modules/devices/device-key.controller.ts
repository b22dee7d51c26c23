import {Controller, Delete, Get, Inject, Post} from "@tsed/common";
import {Description, Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {DeviceKeyCreated, DeviceKeyList} from "./device-key.models.js";
import {DeviceKeyService, MAX_ACTIVE_KEYS} from "./device-key.service.js";

const HOW_TO_USE =
  "Use it over HTTP: `curl -X POST $API/api/v1/device/readings -H \"Authorization: Device $KEY\" -H 'Content-Type: application/json' " +
  '-d \'{"temperatureCelsius": 21.5, "recordedAt": "2026-12-03T09:00:00Z"}\'`; ' +
  "or over MQTT (username = the key's `id`, password = the key): " +
  '`mosquitto_pub -h $HOST -p $MQTT_PORT -q 1 -u $KEY_ID -P $KEY -t devices/$DEVICE_ID/readings -m \'{"temperatureCelsius": 21.5, "recordedAt": "2026-12-03T09:00:00Z"}\'`.';

/** A device's own credentials (docs/api.md "Devices as clients"); routes for operators and admins. */
@Controller("/devices/:deviceId/keys")
@Name("Devices")
@Authenticated()
export class DeviceKeyController {
  @Inject()
  private keys!: DeviceKeyService;

  @Post("/")
  @Summary("Create a device key (shown once)")
  @Description(
    `The answer's \`key\` is shown this once; the server keeps only its SHA-256. At most ${MAX_ACTIVE_KEYS} active keys per device, ` +
      "so a key can be rotated without downtime: create the new one, put it on the device, revoke the old one. " +
      HOW_TO_USE
  )
  @(Returns(201, DeviceKeyCreated).Description("The new key, with its secret (never shown again)"))
  @(Returns(404, ErrorBody).Description("No active device with this id in the tenant"))
  @(Returns(409, ErrorBody).Description(`The device has ${MAX_ACTIVE_KEYS} active keys already: revoke one first`))
  create(@IdParam("deviceId") deviceId: string): Promise<DeviceKeyCreated> {
    return this.keys.create(deviceId);
  }

  @Get("/")
  @Summary("The device's active keys (no secrets)")
  @(Returns(200, DeviceKeyList).Description("Active keys with `lastUsedAt`, oldest first"))
  @(Returns(404, ErrorBody).Description("No such device in this tenant"))
  async list(@IdParam("deviceId") deviceId: string): Promise<DeviceKeyList> {
    return {items: await this.keys.list(deviceId)};
  }

  @Delete("/:keyId")
  @Summary("Revoke a device key")
  @Description(
    "Within 5 s every instance answers 401 to the key over HTTP, refuses it at MQTT CONNECT and closes its open MQTT connections. Idempotent."
  )
  @Returns(204)
  @(Returns(404, ErrorBody).Description("No such device in this tenant, or no such key of this device"))
  async revoke(@IdParam("deviceId") deviceId: string, @IdParam("keyId") keyId: string): Promise<void> {
    await this.keys.revoke(deviceId, keyId);
  }
}
