import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheStats, ReconcileProgress } from '../cache/types.js';

export interface CacheStatsSource {
  stats(): CacheStats;
  /** where the disk index stands against the files, for a cache that reconciles them */
  reconcileProgress?(): ReconcileProgress;
  /** hits answered by each tier, where the cache has tiers */
  readonly hits?: { memory: number; disk: number };
}

/** Prometheus metrics of one edge process (own registry, so tests can run several). */
export class EdgeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'imgedge_requests_total',
    help: 'Requests answered, by status and cache status',
    labelNames: ['status', 'cache'] as const,
    registers: [this.registry],
  });
  /**
   * The counter of each status and cache status seen, by status then cache status, so a request's
   * count skips prom-client's label hashing and builds no key of its own.
   */
  private readonly requestCounters = new Map<number, Map<string, { inc(): void }>>();
  readonly originBytes = new Counter({
    name: 'imgedge_origin_bytes_total',
    help: 'Bytes of source images read from origins',
    registers: [this.registry],
  });
  readonly responseBytes = new Counter({
    name: 'imgedge_response_bytes_total',
    help: 'Body bytes sent to clients for image responses',
    registers: [this.registry],
  });
  readonly originFetches = new Counter({
    name: 'imgedge_origin_fetches_total',
    help: 'Source fetches made to origins',
    registers: [this.registry],
  });
  readonly originNotModified = new Counter({
    name: 'imgedge_origin_not_modified_total',
    help: 'Conditional origin requests answered 304: the held source renewed without a download',
    registers: [this.registry],
  });
  readonly variantsRenewed = new Counter({
    name: 'imgedge_variants_renewed_total',
    help: 'Expired variants renewed without transforming, because their source had not changed',
    registers: [this.registry],
  });
  readonly staleServed = new Counter({
    name: 'imgedge_stale_served_total',
    help: 'Responses served from an expired entry (while revalidating, or because the origin failed)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly storesSkippedForPurge = new Counter({
    name: 'imgedge_cache_stores_skipped_for_purge_total',
    help: 'Misses not stored because a purge was applied while they ran',
    registers: [this.registry],
  });
  readonly cacheWriteErrors = new Counter({
    name: 'imgedge_cache_write_errors_total',
    help: 'Cache writes that failed (the response was served all the same)',
    registers: [this.registry],
  });
  readonly backgroundDropped = new Counter({
    name: 'imgedge_background_dropped_total',
    help: 'Background encodes not queued because the queue was full',
    registers: [this.registry],
  });
  readonly transformSeconds = new Histogram({
    name: 'imgedge_transform_seconds',
    help: 'Time spent decoding, transforming and encoding one image',
    labelNames: ['format'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  countRequest(status: number, cache: string): void {
    let byCache = this.requestCounters.get(status);
    if (!byCache) this.requestCounters.set(status, (byCache = new Map()));
    let counter = byCache.get(cache);
    if (!counter) byCache.set(cache, (counter = this.requests.labels(String(status), cache)));
    counter.inc();
  }

  constructor(cache: CacheStatsSource, background: { queued: number; active: number }, purgeLog?: { unverifiedBefore(): number | undefined }) {
    if (purgeLog) {
      new Gauge({
        name: 'imgedge_purge_log_in_sync',
        help: '1 while this node has read the shared purge log since it last could; 0 while it revalidates older entries',
        registers: [this.registry],
        collect() {
          this.set(purgeLog.unverifiedBefore() === undefined ? 1 : 0);
        },
      });
    }
    new Gauge({
      name: 'imgedge_background_queued',
      help: 'Background encodes waiting',
      registers: [this.registry],
      collect() {
        this.set(background.queued);
      },
    });
    new Gauge({
      name: 'imgedge_background_active',
      help: 'Background encodes running',
      registers: [this.registry],
      collect() {
        this.set(background.active);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'imgedge_' });
    new Gauge({
      name: 'imgedge_cache_bytes',
      help: 'Bytes of cached entries on disk',
      registers: [this.registry],
      collect() {
        this.set(cache.stats().bytes);
      },
    });
    new Counter({
      name: 'imgedge_cache_hits_total',
      help: 'Cache lookups that found an entry (fresh or expired), by the tier that held it',
      labelNames: ['tier'] as const,
      registers: [this.registry],
      collect() {
        const hits = cache.hits;
        if (!hits) return;
        this.reset();
        this.inc({ tier: 'memory' }, hits.memory);
        this.inc({ tier: 'disk' }, hits.disk);
      },
    });
    new Gauge({
      name: 'imgedge_cache_entries',
      help: 'Cached entries on disk',
      registers: [this.registry],
      collect() {
        this.set(cache.stats().entries);
      },
    });
    if (!cache.reconcileProgress) return;
    const progress = (): ReconcileProgress => cache.reconcileProgress!();
    new Gauge({
      name: 'imgedge_cache_index_complete',
      help: '1 when the disk index is known to list every entry file; 0 while it is reconciled in the background',
      registers: [this.registry],
      collect() {
        this.set(progress().complete ? 1 : 0);
      },
    });
    new Gauge({
      name: 'imgedge_cache_reconcile_progress_ratio',
      help: 'Share of the cache tree the background reconciliation has done (1 when complete)',
      registers: [this.registry],
      collect() {
        this.set(progress().fraction);
      },
    });
    new Gauge({
      name: 'imgedge_cache_reconcile_files',
      help: 'Files the running reconciliation has read, adopted into the index, and dropped',
      labelNames: ['outcome'] as const,
      registers: [this.registry],
      collect() {
        const p = progress();
        this.set({ outcome: 'read' }, p.filesRead);
        this.set({ outcome: 'adopted' }, p.adopted);
        this.set({ outcome: 'dropped' }, p.dropped);
      },
    });
  }
}
