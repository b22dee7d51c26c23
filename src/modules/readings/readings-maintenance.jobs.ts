import {Inject} from "@tsed/common";
import {JobController, type JobMethods} from "@tsed/bullmq";
import type {Job} from "bullmq";
import {jobDuration} from "../../platform/observability/metrics.js";
import {type PartitionsRunResult, ReadingPartitionsService} from "./reading-partitions.service.js";
import {READINGS_MAINTENANCE_JOBS, READINGS_MAINTENANCE_QUEUE} from "./readings-maintenance.queue.js";

/** Fired by the nightly scheduler: partitions ahead and raw retention, for every tenant. */
@JobController(READINGS_MAINTENANCE_JOBS.partitions, READINGS_MAINTENANCE_QUEUE)
export class ReadingPartitionsJob implements JobMethods<Record<string, never>, PartitionsRunResult> {
  @Inject()
  private partitions!: ReadingPartitionsService;

  async handle(_payload: Record<string, never>, job: Job) {
    const end = jobDuration.startTimer({queue: job.queueName, name: job.name});
    try {
      const result = await this.partitions.maintainAll(new Date(), (tenants) => job.updateProgress({tenants}));
      end({outcome: "completed"});
      return result;
    } catch (error) {
      end({outcome: "failed"});
      throw error;
    }
  }
}
