import {BodyParams, Context, Controller, Inject, Post, UseBefore} from "@tsed/common";
import {Description, Groups, Name, OneOf, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {DeviceAuthenticated} from "../../platform/device-auth/device-authenticated.decorator.js";
import {documentCommonStatuses} from "../../platform/http/documented-statuses.js";
import {IngestionRateLimitMiddleware} from "../../platform/rate-limit/ingestion-rate-limit.middleware.js";
import {TemperatureReading} from "../readings/reading.entity.js";
import {BatchReceipt, MAX_BATCH_SIZE, ReadingBatch, ReadingCreated} from "../readings/reading.models.js";
import {batchReceiptJson} from "../readings/receipt-json.js";
import {DeviceIngestService} from "./device-ingest.service.js";

/**
 * A device posting its own readings with its key (docs/api.md "Devices as clients"). The body is
 * validated by DeviceReadingsPayload against the same models as the user routes (not by the
 * parameter pipe, which cannot tell a reading from a batch before validating); the answers are
 * theirs, written as JSON text the same way.
 */
@Controller("/device/readings")
@Name("Device clients")
export class DeviceReadingController {
  @Inject()
  private ingest!: DeviceIngestService;

  @Post("/")
  @Summary("A device posts its own readings (device key)")
  @Description(
    "`Authorization: Device <key>` (a key from `POST /api/v1/devices/{deviceId}/keys`): the device and tenant come from the key alone. " +
      `The body is one reading (answered like \`POST /devices/{deviceId}/readings\`: 201, or 200 with \`duplicate: true\`) or up to ${MAX_BATCH_SIZE} readings, ` +
      'as `{"readings": [...]}` or a bare array (answered like `/readings/batch`: 200 with a receipt per item). Same validation, idempotency, alerts and daily statistics as the user routes.\n\n' +
      '```\ncurl -X POST $API/api/v1/device/readings -H "Authorization: Device $KEY" -H \'Content-Type: application/json\' \\\n  -d \'{"temperatureCelsius": 21.5, "recordedAt": "2026-12-03T09:00:00Z"}\'\n```'
  )
  @(Returns(201, ReadingCreated).Description("One reading, stored, with the alerts it opened, updated or resolved"))
  @(Returns(200)
    .OneOf(ReadingCreated, BatchReceipt)
    .Description("One reading already stored (`duplicate: true`), or a batch: every item accepted or a duplicate"))
  @(Returns(400, ErrorBody).Description(
    "Invalid reading(s), or recordedAt out of the clock bounds: nothing is stored; `errors` names each bad index and field"
  ))
  @(Returns(404, ErrorBody).Description("The key's device is no longer active"))
  @(Returns(429, ErrorBody).Description("Per-device or per-tenant ingestion rate exceeded (HTTP and MQTT together); see Retry-After"))
  @DeviceAuthenticated()
  @UseBefore(IngestionRateLimitMiddleware)
  async create(
    @BodyParams({useMapper: false, useValidation: false}) @OneOf(TemperatureReading, ReadingBatch, Array) @Groups("create") body: unknown,
    @Context() $ctx: Context
  ): Promise<string> {
    const result = await this.ingest.record(body);
    if ("items" in result) return batchReceiptJson(result);
    $ctx.response.status(result.duplicate ? 200 : 201);
    return JSON.stringify(result);
  }
}

documentCommonStatuses(DeviceReadingController);
