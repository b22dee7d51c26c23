/**
 * no-data-sweep: what one run of the no_data sweep costs for a tenant of 10,000 devices with
 * 1,000 no_data rules, half of whose devices have been silent too long, against the per-device
 * way the design rules out (one indexed lookup of the device's last arrival per rule), measured
 * in the same run.
 *
 *   npm run bench:no-data-sweep
 *
 * Its own databases (`st_bench_nodata`, `…_analytics`). The API is started once to provision the
 * tenant (its migrations), then the devices and rules are written with SQL. Each round of the
 * subject runs the sweep's three statements for the tenant (NoDataSweep.sweepTenant: episodes of
 * deactivated devices, the due rules locked, the episodes opened) in a transaction that is rolled
 * back, so every round opens the same 500 episodes; the steady state (nothing due, the common
 * case) is measured too and printed as a note. Environment: BENCH_ROUNDS (default 30).
 */
import {dueSilencesSql, endInactiveSilencesSql, openSilencesSql} from "../src/modules/alerts/no-data-sweep.service.js";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";

const TENANT = "bench_nodata";
const DEVICES = 10_000;
const RULES = 1_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const S = `"${TENANT}"`;

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_nodata");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  try {
    const headers = {Authorization: `Bearer ${await jwks.token(TENANT)}`};
    const me = await fetch(`${api.baseUrl}/api/v1/me`, {headers});
    if (me.status !== 200) throw new Error(`GET /me: ${me.status}`);
  } finally {
    await api.stop();
    await jwks.close();
  }

  await withClient(url, async (db) => {
    const [{id: ownerId}] = (await db.query<{id: string}>(`select "id" from ${S}."users" limit 1`)).rows as [{id: string}];
    await db.query(
      `insert into ${S}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "is_active", "owner_id", "last_arrival_at")
       select gen_random_uuid(), now(), now(), 'NODATA-' || i, 'Sensor-' || i, true, $1, now() - (case when i % 20 = 0 then interval '1 hour' else interval '10 seconds' end)
         from generate_series(1, $2::int) i`,
      [ownerId, DEVICES]
    );
    // One no_data rule on every tenth device: 1,000 rules; every other one of those devices silent for an hour.
    await db.query(
      `insert into ${S}."alert_rules" ("id", "created_at", "updated_at", "device_id", "kind", "silence_seconds", "is_enabled")
       select gen_random_uuid(), now() - interval '1 day', now(), d."id", 'no_data', 900, true
         from ${S}."devices" d where substr(d."serial_number", 8)::int % 10 = 0`
    );
    await db.query(`analyze ${S}."devices"; analyze ${S}."alert_rules"`);
    const [{rules, due}] = (
      await db.query<{rules: number; due: number}>(
        `select count(*)::int as rules, count(*) filter (where d."last_arrival_at" < now() - interval '15 minutes')::int as due
           from ${S}."alert_rules" r join ${S}."devices" d on d."id" = r."device_id"`
      )
    ).rows as [{rules: number; due: number}];
    console.log(
      `  ${DEVICES.toLocaleString("en")} devices, ${rules.toLocaleString("en")} no_data rules, ${due} of their devices silent too long`
    );
    const ruleIds = (await db.query<{id: string}>(`select "id" from ${S}."alert_rules" order by "id"`)).rows.map((r) => r.id);
    const deviceOf = new Map(
      (await db.query<{id: string; deviceId: string}>(`select "id", "device_id" as "deviceId" from ${S}."alert_rules"`)).rows.map((r) => [
        r.id,
        r.deviceId
      ])
    );

    const timedInRollback = async (work: () => Promise<void>) => {
      await db.query("begin");
      const t0 = process.hrtime.bigint();
      await work();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      await db.query("rollback");
      return ms;
    };
    const sweep = async () => {
      let opened = 0;
      const ms = await timedInRollback(async () => {
        await db.query(endInactiveSilencesSql(S));
        const dueRows = (await db.query<{id: string}>(dueSilencesSql(S))).rows;
        if (dueRows.length)
          opened = (await db.query(openSilencesSql(S).replace(":ruleIds", "$1"), [dueRows.map((r) => r.id)])).rowCount ?? 0;
      });
      if (opened !== due) throw new Error(`the sweep opened ${opened} episodes, expected ${due}`);
      return ms;
    };
    // What the design avoids: one lookup per rule of its device's last arrival (the due ones then opened alike).
    const perDevice = () =>
      timedInRollback(async () => {
        for (const ruleId of ruleIds) {
          await db.query(
            `select d."last_arrival_at" from ${S}."devices" d where d."id" = $1 and d."last_arrival_at" < now() - interval '15 minutes'`,
            [deviceOf.get(ruleId)]
          );
        }
      });

    await runPart({
      name: "no-data-sweep",
      unit: "ms per tenant sweep, client-side",
      target: "<= 0.5",
      warmupRounds: 2,
      rounds: ROUNDS,
      subject: {label: `sweep: 3 statements, ${due} episodes opened (rolled back)`, run: sweep},
      baseline: {label: `per-device lookups, ${RULES.toLocaleString("en")} queries`, run: perDevice}
    });

    // The steady state: nothing due (every silent device already has its episode open).
    await db.query(`update ${S}."devices" set "last_arrival_at" = now()`);
    const idle: number[] = [];
    for (let i = 0; i < ROUNDS; i++)
      idle.push(
        await timedInRollback(async () => {
          await db.query(endInactiveSilencesSql(S));
          await db.query(dueSilencesSql(S));
        })
      );
    console.log(`  steady state (nothing due): median ${median(idle).toFixed(2)} ms per tenant sweep`);
    const plan = (await db.query<{"QUERY PLAN": string}>(`explain ${dueSilencesSql(S)}`)).rows.map((r) => r["QUERY PLAN"]);
    console.log(`  plan of the due rules:\n    ${plan.join("\n    ")}`);
  });
}

runMain(main);
