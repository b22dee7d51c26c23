import {Context, Controller, Get, Inject} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import type {MikroORM} from "@mikro-orm/postgresql";
import {Description, Enum, Name, Property, Required, Returns, Summary} from "@tsed/schema";
import {withTimeout} from "../async/with-timeout.js";
import {RedisClient} from "../cache/redis.provider.js";
import {ANALYTICS_CONTEXT} from "../db/orm-contexts.js";

type Status = "up" | "down";

export class LiveBody {
  @Required() @Enum("ok") status!: "ok";
}

export class ReadyChecks {
  @Required() @Enum("up", "down") @Description("Tenant database (default context)") database!: Status;
  @Required() @Enum("up", "down") @Description("Analytics database (analytics context)") analytics!: Status;
  @Required() @Enum("up", "down") redis!: Status;
}

export class ReadyBody {
  @Required() @Enum("ready", "unavailable") status!: "ready" | "unavailable";
  @Required() @Property() checks!: ReadyChecks;
}

const CHECK_TIMEOUT_MS = 2_000;

@Controller("/health")
@Name("Health")
export class HealthController {
  @Orm()
  private orm!: MikroORM;

  @Orm(ANALYTICS_CONTEXT)
  private analytics!: MikroORM;

  @Inject(RedisClient)
  private redis!: RedisClient;

  @Get("/live")
  @Summary("Liveness: the process is up")
  @Returns(200, LiveBody)
  live(): LiveBody {
    return {status: "ok"};
  }

  @Get("/ready")
  @Summary("Readiness: Postgres (both contexts) and Redis answer")
  @Returns(200, ReadyBody)
  @(Returns(503, ReadyBody).Description("A backing service is down"))
  async ready(@Context() $ctx: Context): Promise<ReadyBody> {
    const [database, analytics, redis] = await Promise.all([
      probe(() => this.orm.em.getConnection().execute("select 1")),
      probe(() => this.analytics.em.getConnection().execute("select 1")),
      probe(() => this.redis.ping())
    ]);
    const checks = {database, analytics, redis};
    const ready = Object.values(checks).every((status) => status === "up");
    if (!ready) $ctx.response.status(503);
    return {status: ready ? "ready" : "unavailable", checks};
  }
}

/** "up" when the check answers within CHECK_TIMEOUT_MS (a dead host can take a TCP timeout to fail). */
function probe(check: () => Promise<unknown>): Promise<Status> {
  return withTimeout(
    check().then((): Status => "up"),
    CHECK_TIMEOUT_MS,
    (): Status => "down"
  ).catch((): Status => "down");
}
