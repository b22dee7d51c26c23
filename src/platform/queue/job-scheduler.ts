import {inject, Inject, injectable, Injectable, Logger} from "@tsed/common";
import {getQueueToken} from "@tsed/bullmq";
import type {JobsOptions, Queue} from "bullmq";
import {withTimeout} from "../async/with-timeout.js";
import {RedisClient} from "../cache/redis.provider.js";

/** A repeating job a feature wants: BullMQ keeps one scheduler per id in Redis, whoever registers it. */
export interface JobSchedule {
  queue: string;
  /** The scheduler's id in Redis (a constant of the feature: changing it leaves the old one behind). */
  schedulerId: string;
  /** Cron pattern, read in UTC; or */
  pattern?: string;
  /** a period in milliseconds (for periods a cron pattern cannot say, such as a configured number of seconds). */
  every?: number;
  job: {name: string; data?: object; opts?: JobsOptions};
}

/** DI type of the schedules features declare (see jobSchedule). */
export const JOB_SCHEDULE = Symbol.for("smart-thermo:JobSchedule");

/**
 * Declares a feature's repeating job; `schedule` is called once the configuration is known (the
 * pattern usually comes from it). The feature's index.ts imports the file that declares it.
 */
export function jobSchedule(schedulerId: string, schedule: () => Omit<JobSchedule, "schedulerId">): void {
  injectable(Symbol.for(`smart-thermo:job-schedule:${schedulerId}`))
    .type(JOB_SCHEDULE)
    .factory(() => ({...schedule(), schedulerId}));
}

const SCHEDULE_TIMEOUT_MS = 10_000;

/**
 * Registers every declared schedule when the application is ready (API and worker processes
 * alike). `upsertJobScheduler` is idempotent and the scheduler lives in Redis, so however many
 * processes start, there is one scheduler and one job per period. Boot does not wait for Redis:
 * a failure is logged and the next start registers it.
 */
@Injectable()
export class JobScheduler {
  @Inject(JOB_SCHEDULE)
  private schedules!: JobSchedule[];

  @Inject()
  private logger!: Logger;

  private registering: Promise<void> = Promise.resolve();

  @Inject(RedisClient)
  private redis!: RedisClient;

  private redisLost = false;

  $onReady() {
    this.registerAll();
    // Redis back after an outage may have lost its data (no persistence, a failover to an empty
    // replica): register again, or no scheduled job would run until the next deploy.
    this.redis.on("error", () => (this.redisLost = true));
    this.redis.on("ready", () => {
      if (!this.redisLost) return;
      this.redisLost = false;
      this.registerAll();
    });
  }

  private registerAll(): void {
    this.registering = Promise.all(this.schedules.map((schedule) => this.register(schedule))).then(() => undefined);
  }

  /** A process that stops right after starting (a CLI) lets the registration finish first: a command cut off mid-way keeps its Redis connection open. */
  async $onDestroy() {
    await this.registering;
  }

  async register({queue, schedulerId, pattern, every, job}: JobSchedule): Promise<void> {
    try {
      await withTimeout(
        inject<Queue>(getQueueToken(queue)).upsertJobScheduler(schedulerId, every === undefined ? {pattern, tz: "UTC"} : {every}, job),
        SCHEDULE_TIMEOUT_MS,
        () => {
          throw new Error(`Redis did not answer within ${SCHEDULE_TIMEOUT_MS} ms`);
        }
      );
      this.logger.info({event: "JOB_SCHEDULED", schedulerId, pattern, every, tz: "UTC"});
    } catch (error) {
      this.logger.warn({event: "JOB_NOT_SCHEDULED", schedulerId, pattern, every, error_message: (error as Error).message});
    }
  }
}
