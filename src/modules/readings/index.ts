import {ReadingController} from "./reading.controller.js";

/** Controllers of the readings feature, mounted under /api/v1. */
export const readingControllers: unknown[] = [ReadingController];
