import {constant, Inject, Injectable} from "@tsed/di";
import {InjectQueue} from "@tsed/bullmq";
import {Logger} from "@tsed/logger";
import type {Queue} from "bullmq";
import type {Env} from "../../config/env.js";
import {AGGREGATION_JOBS, AGGREGATION_QUEUE, NIGHTLY_SCHEDULER_ID} from "./queues.js";
import {withTimeout} from "./with-timeout.js";

const SCHEDULE_TIMEOUT_MS = 10_000;

/**
 * Registers the nightly job scheduler when the application is ready (API and worker processes
 * alike). `upsertJobScheduler` is idempotent and the scheduler lives in Redis, so however many
 * processes start, there is one scheduler and one fan-out job per night. The cron pattern
 * (`NIGHTLY_CRON`) is read in UTC; each tenant's job then picks its own local yesterday.
 * Boot does not wait for Redis: a failure is logged and the next start registers it.
 */
@Injectable()
export class NightlyScheduler {
  @InjectQueue(AGGREGATION_QUEUE)
  private queue!: Queue;

  @Inject()
  private logger!: Logger;

  $onReady() {
    void this.schedule();
  }

  async schedule(): Promise<void> {
    const pattern = constant<Env>("env")!.nightlyCron;
    try {
      await withTimeout(
        this.queue.upsertJobScheduler(
          NIGHTLY_SCHEDULER_ID,
          {pattern, tz: "UTC"},
          {name: AGGREGATION_JOBS.nightlyFanOut, data: {}, opts: {removeOnComplete: {age: 7 * 24 * 3600}, removeOnFail: {age: 30 * 24 * 3600}}}
        ),
        SCHEDULE_TIMEOUT_MS,
        () => new Error(`Redis did not answer within ${SCHEDULE_TIMEOUT_MS} ms`)
      );
      this.logger.info({event: "NIGHTLY_AGGREGATION_SCHEDULED", pattern, tz: "UTC"});
    } catch (error) {
      this.logger.warn({event: "NIGHTLY_AGGREGATION_NOT_SCHEDULED", pattern, error_message: (error as Error).message});
    }
  }
}
