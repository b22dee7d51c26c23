import type {MikroORM} from "@mikro-orm/postgresql";

type Migrator = ReturnType<MikroORM["getMigrator"]>;

interface MigrationStorage {
  ensureTable(): Promise<void>;
  getTableName(): {tableName: string; schemaName?: string};
}

/**
 * The ORM's migrator, with its migrations table checked in its own schema only. MikroORM 6's
 * MigrationStorage.ensureTable lists every table of the database (every tenant schema's, a
 * regclass cast per row) to find that one table: work that grows with the number of tenants on
 * every migration run, and a query that fails (42P01) when another process drops a table while it
 * runs — the nightly retention drops partitions of other tenants at any time. `create table if not
 * exists` with the columns MikroORM gives it asks only about the one table. (MigrationStorage is
 * internal to the migrator, reached through a private field; tenancy.spec fails if that changes.)
 */
export function scopedMigrator(orm: MikroORM): Migrator {
  const migrator = orm.getMigrator();
  const storage = (migrator as unknown as {storage?: MigrationStorage}).storage;
  if (!storage || typeof storage.ensureTable !== "function" || typeof storage.getTableName !== "function") {
    throw new Error("MikroORM's migrator no longer keeps its MigrationStorage in `storage`: see scoped-migrator.ts");
  }
  storage.ensureTable = async () => {
    const {tableName, schemaName} = storage.getTableName();
    const table = schemaName ? `"${schemaName}"."${tableName}"` : `"${tableName}"`;
    if (schemaName) await orm.em.getConnection().execute(`create schema if not exists "${schemaName}"`);
    await orm.em
      .getConnection()
      .execute(
        `create table if not exists ${table} ("id" serial primary key, "name" varchar(255), "executed_at" timestamptz default current_timestamp)`
      );
  };
  return migrator;
}
