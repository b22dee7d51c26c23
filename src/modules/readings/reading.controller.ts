import {BodyParams, Context, Controller, Inject, Post, UseBefore} from "@tsed/common";
import {Description, Groups, Name, Required, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {IdParam} from "../../platform/validation/id-param.js";
import {IngestionRateLimitMiddleware} from "../../platform/rate-limit/ingestion-rate-limit.middleware.js";
import {TemperatureReading} from "./reading.entity.js";
import {BatchReceipt, MAX_BATCH_SIZE, ReadingBatch, ReadingCreated, readingInputOf} from "./reading.models.js";
import {ReadingService} from "./reading.service.js";
import {batchReceiptJson} from "./receipt-json.js";

/**
 * Ingestion. Both routes validate the body against the models with AJV (the schema of the OpenAPI
 * document) but bypass json-mapper both ways — `useMapper: false` in, a JSON string out (the
 * documented model, built from plain objects): for a batch json-mapper cost ~14 ms to make 1,000
 * entity instances and ~10 ms to serialize 1,000 receipts, more than the INSERT itself.
 */
@Controller("/devices/:deviceId/readings")
@Name("Readings")
@Authenticated()
export class ReadingController {
  @Inject()
  private readings!: ReadingService;

  @Inject()
  private tenant!: TenantContext;

  @Post("/")
  @Summary("Store one reading")
  @Description(
    "Idempotent per (device, recordedAt): a retry of a stored reading answers 200 with `duplicate: true` and stores nothing. " +
      "The reading is checked against the device's enabled alert rules in the same transaction."
  )
  @(Returns(201, ReadingCreated).Description("Stored, with the alerts it opened, updated or resolved"))
  @(Returns(200, ReadingCreated).Description("Duplicate: the device already has a reading at this recordedAt; `reading` is the stored one"))
  @(Returns(400, ErrorBody).Description("Invalid reading, or recordedAt more than 5 minutes in the future"))
  @(Returns(404, ErrorBody).Description("No active device with this id in the tenant"))
  @(Returns(429, ErrorBody).Description("Per-device or per-tenant ingestion rate exceeded; see Retry-After"))
  @UseBefore(IngestionRateLimitMiddleware)
  async create(
    @IdParam("deviceId") deviceId: string,
    @BodyParams({useMapper: false}) @Required() @Groups("create") body: TemperatureReading,
    @Context() $ctx: Context
  ): Promise<string> {
    const result = await this.readings.ingest({tenantId: this.tenant.tenantId, deviceId, readings: [readingInputOf(body)], single: true});
    $ctx.response.status(result.duplicate ? 200 : 201);
    return JSON.stringify(result);
  }

  @Post("/batch")
  @Summary(`Store up to ${MAX_BATCH_SIZE} readings`)
  @Description(
    "One transaction, one INSERT. Readings already stored (device retries) are reported as `duplicate` per item, not stored again and not an error. " +
      "Alert rules see the new readings in recordedAt order."
  )
  @(Returns(200, BatchReceipt).Description("Every item is either accepted or a duplicate"))
  @(Returns(400, ErrorBody).Description(
    `Invalid item(s), or more than ${MAX_BATCH_SIZE} readings: nothing is stored; \`errors\` names each bad index and field`
  ))
  @(Returns(404, ErrorBody).Description("No active device with this id in the tenant"))
  @(Returns(413, ErrorBody).Description("Request body larger than the server's limit"))
  @(Returns(429, ErrorBody).Description("Per-device or per-tenant ingestion rate exceeded; see Retry-After"))
  @UseBefore(IngestionRateLimitMiddleware)
  async createBatch(
    @IdParam("deviceId") deviceId: string,
    @BodyParams({useMapper: false}) @Required() @Groups("create") body: ReadingBatch
  ): Promise<string> {
    const readings = body.readings.map(readingInputOf);
    return batchReceiptJson(await this.readings.ingest({tenantId: this.tenant.tenantId, deviceId, readings, single: false}));
  }
}
