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

  /**
   * Settled values only: a promise made inside a request keeps that request's whole async context
   * (its response, its entity managers) for as long as it is referenced (its async_hooks resource
   * store), which was ~40 kB of heap per cached tenant (bench:tenant-memory).
   */
  private readonly entries = new LRUCache<string, CachedTenantSettings>({max: MAX_ENTRIES, ttl: TENANT_SETTINGS_TTL_MS});
  /** Lookups under way, shared by concurrent misses; each is forgotten once it settles. */
  private readonly loading = new Map<string, Promise<CachedTenantSettings>>();

  get(tenantId: string): Promise<CachedTenantSettings> {
    const hit = this.entries.get(tenantId);
    if (hit) return Promise.resolve(hit);
    let settings = this.loading.get(tenantId);
    if (!settings) {
      settings = this.registry.settingsOf(tenantId).then((tenant) => {
        // Not after an invalidation that came in meanwhile: the value read may be older than it.
        if (this.loading.get(tenantId) === settings) this.entries.set(tenantId, tenant ?? UNREGISTERED);
        return tenant ?? UNREGISTERED;
      });
      this.loading.set(tenantId, settings);
      const forget = () => {
        if (this.loading.get(tenantId) === settings) this.loading.delete(tenantId);
      };
      settings.then(forget, forget);
    }
    return settings;
  }

  /** The tenant's settings changed (through this instance). */
  invalidate(tenantId: string): void {
    this.entries.delete(tenantId);
    this.loading.delete(tenantId);
  }
}
