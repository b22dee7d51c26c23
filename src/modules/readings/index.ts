import type {Feature} from "../../common/feature.js";
// Providers nothing injects by type must still be loaded (components scan is disabled): the BullMQ
// job handler and the nightly schedule of the partition maintenance.
import "./readings-maintenance.jobs.js";
import {ExplainController} from "./explain.controller.js";
import {ReadingController} from "./reading.controller.js";
import {TemperatureReading} from "./reading.entity.js";
import {ReadingExportController} from "./reading-export.controller.js";
import {ReadingHistoryController} from "./reading-history.controller.js";
import {READINGS_MAINTENANCE_QUEUE} from "./readings-maintenance.queue.js";

/**
 * Ingestion (the write path: readings, alert episodes, DailyStats refresh), history and streamed
 * export of readings, and their table over time: monthly partitions created ahead and dropped
 * past the tenant's raw retention (a nightly job).
 */
export const readingsFeature: Feature = {
  name: "readings",
  controllers: [ReadingController, ReadingHistoryController, ReadingExportController, ExplainController],
  tenantEntities: [TemperatureReading],
  queues: [READINGS_MAINTENANCE_QUEUE]
};
