import {AjvService} from "@tsed/ajv";
import {Inject, Injectable} from "@tsed/common";
import {InvalidInputError, PayloadTooLargeError} from "../../common/errors.js";
import {assertSafeJson} from "../../platform/validation/json-body.js";
import {TemperatureReading} from "../readings/reading.entity.js";
import {ReadingBatch, type ReadingInput, readingInputOf} from "../readings/reading.models.js";

/** What a device sent: one reading, or several (an array or `{readings: [...]}`, answered as a batch). */
export interface DeviceReadings {
  kind: "single" | "batch";
  readings: ReadingInput[];
}

/**
 * A device's readings, as it may send them over HTTP or MQTT: one reading, an array of readings,
 * or `{"readings": [...]}` (up to 1,000). Validated by the same AJV validator against the same
 * models as the user routes (the `create` group of TemperatureReading, ReadingBatch), so every
 * transport accepts and refuses exactly the same readings with the same messages; the clock
 * bounds are ReadingService's, as for the user routes.
 */
@Injectable()
export class DeviceReadingsPayload {
  @Inject()
  private ajv!: AjvService;

  /**
   * @param where how the error message names the input (`parameter "request.body"`, like the user routes)
   * @throws InvalidInputError (400) naming each bad field, as the user routes do
   */
  async parse(body: unknown, where: string): Promise<DeviceReadings> {
    const kind = Array.isArray(body) || (body !== null && typeof body === "object" && "readings" in body) ? "batch" : "single";
    const value = Array.isArray(body) ? {readings: body} : body;
    try {
      if (kind === "batch") {
        await this.ajv.validate(value, {type: ReadingBatch, groups: ["create"]});
        return {kind, readings: (value as ReadingBatch).readings.map(readingInputOf)};
      }
      await this.ajv.validate(value, {type: TemperatureReading, groups: ["create"]});
      return {kind, readings: [readingInputOf(value as TemperatureReading)]};
    } catch (error) {
      const {message, errors} = error as {message?: string; errors?: Record<string, unknown>[]};
      if (!Array.isArray(errors)) throw error;
      throw new InvalidInputError(
        `Bad request on ${where}.\n${message ?? ""}`.trim(),
        errors.map((e) => validationDetail(e, where))
      );
    }
  }

  /**
   * An MQTT payload: at most `maxBytes`, then the same checks as an HTTP body (JSON, no NUL, no
   * deep nesting: json-body.ts), then `parse`.
   */
  async parseBuffer(payload: Buffer, maxBytes: number, where: string): Promise<DeviceReadings> {
    if (payload.length > maxBytes) {
      throw new PayloadTooLargeError(`The payload is larger than ${maxBytes} bytes`);
    }
    let body: unknown;
    try {
      assertSafeJson(payload);
      body = JSON.parse(payload.toString("utf8"));
    } catch (error) {
      throw new InvalidInputError(error instanceof SyntaxError ? "The payload is not valid JSON" : (error as Error).message);
    }
    return this.parse(body, where);
  }
}

/** An AJV error as the user routes report it: the field, the rule and its message, never the rejected value. */
function validationDetail(error: Record<string, unknown>, where: string): Record<string, unknown> {
  const {instancePath, keyword, message, params} = error;
  return Object.fromEntries(
    Object.entries({requestPath: where.includes("request.body") ? "body" : "payload", instancePath, keyword, message, params}).filter(
      ([, v]) => v !== undefined
    )
  );
}
