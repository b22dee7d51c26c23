import type {Feature} from "../../common/feature.js";
import {ExplainController} from "./explain.controller.js";
import {ReadingController} from "./reading.controller.js";
import {TemperatureReading} from "./reading.entity.js";
import {ReadingHistoryController} from "./reading-history.controller.js";

/** Ingestion (the write path: readings, alert episodes, DailyStats refresh) and history of readings. */
export const readingsFeature: Feature = {
  name: "readings",
  controllers: [ReadingController, ReadingHistoryController, ExplainController],
  tenantEntities: [TemperatureReading]
};
