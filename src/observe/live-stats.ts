/**
 * What the operator dashboard shows, kept in memory as requests finish: the last minute per
 * second (requests by cache status, bytes sent, bytes the originals would have been), latencies
 * of hits and misses over the last 10 seconds, the output format mix, the most requested sources
 * and those that saved the most bytes (a bounded table), and the latest purges.
 */

/** The fields of a finished request the dashboard counts (the request log's, structurally). */
export interface FinishedRequest {
  path: string;
  site?: string;
  status?: number;
  cache?: string;
  formatOut?: string;
  /** the source's bytes (what the client would have got without the edge) */
  bytesIn?: number;
  bytesOut?: number;
  totalMs?: number;
}

interface Second {
  at: number;
  byCache: Record<string, number>;
  bytesOut: number;
  bytesOriginal: number;
  hitMs: number[];
  missMs: number[];
}

interface SourceRow {
  requests: number;
  saved: number;
}

export interface PurgeSummary {
  at: number;
  what: string;
  purged: number;
}

const SECONDS_KEPT = 60;
const LATENCY_SECONDS = 10;
const MAX_SOURCES = 2000;
const PURGES_KEPT = 10;

const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);

export class LiveStats {
  private readonly seconds: Second[] = [];
  private readonly formats: Record<string, number> = {};
  private readonly sources = new Map<string, SourceRow>();
  private readonly purges: PurgeSummary[] = [];
  private totals = { requests: 0, bytesOut: 0, bytesOriginal: 0 };

  constructor(private readonly now: () => number = Date.now) {}

  private current(): Second {
    const at = Math.floor(this.now() / 1000);
    let last = this.seconds.at(-1);
    if (!last || last.at !== at) {
      last = { at, byCache: {}, bytesOut: 0, bytesOriginal: 0, hitMs: [], missMs: [] };
      this.seconds.push(last);
      while (this.seconds.length > SECONDS_KEPT) this.seconds.shift();
      // Latencies are read over the last LATENCY_SECONDS only: older samples are let go.
      const stale = this.seconds.at(-LATENCY_SECONDS - 1);
      if (stale) stale.hitMs = stale.missMs = [];
    }
    return last;
  }

  observe(r: FinishedRequest): void {
    const s = this.current();
    const cache = r.cache ?? 'NONE';
    s.byCache[cache] = (s.byCache[cache] ?? 0) + 1;
    this.totals.requests++;
    if (r.totalMs !== undefined) {
      if (cache === 'HIT') s.hitMs.push(r.totalMs);
      else if (cache === 'MISS') s.missMs.push(r.totalMs);
    }
    const isImage = r.formatOut !== undefined && r.bytesOut !== undefined;
    if (r.bytesOut !== undefined) {
      s.bytesOut += r.bytesOut;
      this.totals.bytesOut += r.bytesOut;
      const original = isImage && r.bytesIn !== undefined ? r.bytesIn : r.bytesOut;
      s.bytesOriginal += original;
      this.totals.bytesOriginal += original;
    }
    if (isImage) {
      this.formats[r.formatOut!] = (this.formats[r.formatOut!] ?? 0) + 1;
      const query = r.path.indexOf('?');
      const key = `${r.site ?? '-'} ${query < 0 ? r.path : r.path.slice(0, query)}`;
      const row = this.sources.get(key) ?? { requests: 0, saved: 0 };
      row.requests++;
      row.saved += Math.max(0, (r.bytesIn ?? r.bytesOut!) - r.bytesOut!);
      this.sources.set(key, row);
      if (this.sources.size > MAX_SOURCES) this.evict();
    }
  }

  /** Drops the least requested half of the table: a bounded top list, exact for busy sources. */
  private evict(): void {
    const rows = [...this.sources].sort((a, b) => a[1].requests - b[1].requests);
    for (const [key] of rows.slice(0, rows.length / 2)) this.sources.delete(key);
  }

  /** Requests counted since start (without building a snapshot). */
  get requests(): number {
    return this.totals.requests;
  }

  purged(p: PurgeSummary): void {
    this.purges.unshift(p);
    this.purges.length = Math.min(this.purges.length, PURGES_KEPT);
  }

  snapshot() {
    this.current();
    const now = Math.floor(this.now() / 1000);
    // The last whole second, and per-second series over the last minute.
    const series = Array.from({ length: SECONDS_KEPT }, (_, i) => {
      const at = now - SECONDS_KEPT + i;
      const s = this.seconds.find((x) => x.at === at);
      return { at, hit: s?.byCache.HIT ?? 0, miss: s?.byCache.MISS ?? 0, stale: s?.byCache.STALE ?? 0, other: s ? Object.entries(s.byCache).filter(([k]) => !['HIT', 'MISS', 'STALE'].includes(k)).reduce((n, [, v]) => n + v, 0) : 0 };
    });
    const recent = this.seconds.filter((s) => s.at > now - LATENCY_SECONDS && s.at < now);
    const hit = recent.flatMap((s) => s.hitMs).sort((a, b) => a - b);
    const miss = recent.flatMap((s) => s.missMs).sort((a, b) => a - b);
    const hits = recent.reduce((n, s) => n + (s.byCache.HIT ?? 0), 0);
    const misses = recent.reduce((n, s) => n + (s.byCache.MISS ?? 0) + (s.byCache.STALE ?? 0), 0);
    const top = (by: keyof SourceRow) => [...this.sources].sort((a, b) => b[1][by] - a[1][by]).slice(0, 10).map(([source, row]) => ({ source, ...row }));
    return {
      at: now,
      series,
      totals: { ...this.totals },
      hitRatio: hits + misses === 0 ? null : hits / (hits + misses),
      latencyMs: { hit: { p50: percentile(hit, 0.5), p99: percentile(hit, 0.99) }, miss: { p50: percentile(miss, 0.5), p99: percentile(miss, 0.99) } },
      formats: { ...this.formats },
      topByRequests: top('requests'),
      topBySaved: top('saved'),
      purges: [...this.purges],
    };
  }
}

export type LiveSnapshot = ReturnType<LiveStats['snapshot']>;
