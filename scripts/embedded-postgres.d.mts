/** Types of scripts/embedded-postgres.mjs for the TypeScript callers (the fault tests). */
export declare class EmbeddedPostgresError extends Error {}

export interface EmbeddedPostgresCluster {
  readonly dataDir: string;
  readonly port: number;
  /** Whom the postmaster runs as (root runs it as `postgres`); undefined: this process' user. */
  readonly runAs: string | undefined;
  readonly running: boolean;
  url(database: string): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

export declare function prepareEmbeddedPostgres(options: {
  port: number;
  dataDir?: string;
  user?: string;
  password?: string;
  log?: (line: string) => void;
}): Promise<EmbeddedPostgresCluster>;
