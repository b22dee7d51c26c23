import type {EntityManager} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

export interface SilenceRow {
  id: string;
  deviceId: string | null;
  ruleId: string | null;
  startsAt: Date;
  endsAt: Date;
  comment: string;
  createdBy: string;
  createdAt: Date;
}

const COLUMNS = `"id"::text as "id", "device_id"::text as "deviceId", "rule_id"::text as "ruleId", "starts_at" as "startsAt",
  "ends_at" as "endsAt", "comment", "created_by" as "createdBy", "created_at" as "createdAt"`;

/** A tenant's silences (see SilenceService); like WebhookRepository, explicit about its entity manager and tenant. */
@Injectable()
export class SilenceRepository {
  async insert(em: EntityManager, tenantId: string, silence: Omit<SilenceRow, "createdAt">): Promise<SilenceRow> {
    const [row] = await queryRows<SilenceRow>(
      em,
      `insert into ${quoteTenantSchema(tenantId)}."silences" ("id", "device_id", "rule_id", "starts_at", "ends_at", "comment", "created_by")
       values (:id::uuid, :deviceId::uuid, :ruleId::uuid, :startsAt::timestamptz, :endsAt::timestamptz, :comment, :createdBy)
       returning ${COLUMNS}`,
      {...silence, startsAt: silence.startsAt.toISOString(), endsAt: silence.endsAt.toISOString()}
    );
    return row!;
  }

  /** Newest first; `active`: only those in force now (true) or not (false). */
  async list(
    em: EntityManager,
    tenantId: string,
    filter: {active?: boolean; page: number; pageSize: number}
  ): Promise<{items: SilenceRow[]; total: number}> {
    const where = `(:active::boolean is null or (("starts_at" <= now() and "ends_at" > now()) = :active::boolean))`;
    const bindings = {active: filter.active, limit: filter.pageSize, offset: (filter.page - 1) * filter.pageSize};
    const items = await queryRows<SilenceRow>(
      em,
      `select ${COLUMNS} from ${quoteTenantSchema(tenantId)}."silences" where ${where} order by "created_at" desc, "id" desc limit :limit offset :offset`,
      bindings
    );
    const [count] = await queryRows<{n: number}>(
      em,
      `select count(*)::int as "n" from ${quoteTenantSchema(tenantId)}."silences" where ${where}`,
      bindings
    );
    return {items, total: count!.n};
  }

  async find(em: EntityManager, tenantId: string, id: string): Promise<SilenceRow | undefined> {
    const [row] = await queryRows<SilenceRow>(
      em,
      `select ${COLUMNS} from ${quoteTenantSchema(tenantId)}."silences" where "id" = :id::uuid`,
      {id}
    );
    return row;
  }

  /** Ends the silence now (one that has ended already keeps its end; one yet to start never starts); the row stays. */
  async end(em: EntityManager, tenantId: string, id: string): Promise<SilenceRow | undefined> {
    const [row] = await queryRows<SilenceRow>(
      em,
      `update ${quoteTenantSchema(tenantId)}."silences" set "ends_at" = least("ends_at", now()),
         "starts_at" = least("starts_at", now() - interval '1 millisecond')
       where "id" = :id::uuid returning ${COLUMNS}`,
      {id}
    );
    return row;
  }

  /** Whether a silence of the tenant, of the device, of the rule, or of the whole tenant, is in force at `at`. */
  async isSilenced(
    em: EntityManager,
    tenantId: string,
    scope: {deviceId: string | null; ruleId: string | null},
    at: Date
  ): Promise<boolean> {
    const [row] = await queryRows<{silenced: boolean}>(
      em,
      `select exists (
         select 1 from ${quoteTenantSchema(tenantId)}."silences"
         where "starts_at" <= :at::timestamptz and "ends_at" > :at::timestamptz
           and (("device_id" is null and "rule_id" is null) or "device_id" = :deviceId::uuid or "rule_id" = :ruleId::uuid)
       ) as "silenced"`,
      {at: at.toISOString(), deviceId: scope.deviceId, ruleId: scope.ruleId}
    );
    return row!.silenced;
  }

  async deviceExists(em: EntityManager, tenantId: string, deviceId: string): Promise<boolean> {
    const rows = await queryRows(em, `select 1 from ${quoteTenantSchema(tenantId)}."devices" where "id" = :deviceId::uuid`, {deviceId});
    return rows.length > 0;
  }

  async ruleDevice(em: EntityManager, tenantId: string, ruleId: string): Promise<string | undefined> {
    const [row] = await queryRows<{deviceId: string}>(
      em,
      `select "device_id"::text as "deviceId" from ${quoteTenantSchema(tenantId)}."alert_rules" where "id" = :ruleId::uuid`,
      {ruleId}
    );
    return row?.deviceId;
  }
}
