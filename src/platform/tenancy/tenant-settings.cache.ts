import {Inject, Injectable} from "@tsed/common";
import {LRUCache} from "lru-cache";
import {TenantRegistry} from "./tenant-registry.repository.js";

/** The settings the request paths read on every call. */
export interface CachedTenantSettings {
  timezone: string;
  rawRetentionDays: number | null;
}

/**
 * How long a tenant's settings are served from this process' memory. A change made through another
 * instance is seen here within this time; the instance that made it sees it at once (`invalidate`).
 */
export const TENANT_SETTINGS_TTL_MS = 30_000;
const MAX_ENTRIES = 10_000;
const UNREGISTERED: CachedTenantSettings = {timezone: "UTC", rawRetentionDays: null};

/**
 * A tenant's settings for the hot paths (every ingest checks the raw retention, every history page
 * reports it): without this, each of them would cost a registry query. Entries live
 * TENANT_SETTINGS_TTL_MS, at most MAX_ENTRIES of them (the least recently used go first); concurrent
 * misses of a tenant share one query. Jobs that act on a setting
 * (dropping partitions) read the registry itself, never this.
 */
@Injectable()
export class TenantSettingsCache {
  @Inject()
  private registry!: TenantRegistry;

  private readonly entries = new LRUCache<string, Promise<CachedTenantSettings>>({max: MAX_ENTRIES, ttl: TENANT_SETTINGS_TTL_MS});

  get(tenantId: string): Promise<CachedTenantSettings> {
    const hit = this.entries.get(tenantId);
    if (hit) return hit;
    const settings = this.registry.settingsOf(tenantId).then(
      (tenant) => tenant ?? UNREGISTERED,
      (error: unknown) => {
        this.entries.delete(tenantId);
        throw error;
      }
    );
    this.entries.set(tenantId, settings);
    return settings;
  }

  /** The tenant's settings changed (through this instance). */
  invalidate(tenantId: string): void {
    this.entries.delete(tenantId);
  }
}
