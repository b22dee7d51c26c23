import {Inject} from "@tsed/common";
import {JobController, type JobMethods} from "@tsed/bullmq";
import type {Job} from "bullmq";
import {jobDuration} from "../../platform/observability/metrics.js";
import {ALERTS_JOBS, ALERTS_QUEUE} from "./alerts.queue.js";
import {NoDataSweep, type NoDataSweepResult} from "./no-data-sweep.service.js";

/** Scheduled every NO_DATA_SWEEP_S: no_data episodes of every tenant. */
@JobController(ALERTS_JOBS.noDataSweep, ALERTS_QUEUE)
export class NoDataSweepJob implements JobMethods<Record<string, never>, NoDataSweepResult> {
  @Inject()
  private sweep!: NoDataSweep;

  async handle(_payload: Record<string, never>, job: Job) {
    const end = jobDuration.startTimer({queue: job.queueName, name: job.name});
    try {
      const result = await this.sweep.sweepAll();
      end({outcome: "completed"});
      return result;
    } catch (error) {
      end({outcome: "failed"});
      throw error;
    }
  }
}
