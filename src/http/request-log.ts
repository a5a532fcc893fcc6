/** Fields of the one log line written per request; stages fill in what they learn. */
export interface RequestLog {
  site?: string;
  method: string;
  path: string;
  status?: number;
  cache?: string;
  formatIn?: string;
  formatOut?: string;
  /** auto=format's encodes on a miss, first choice first: "avif,jpeg" */
  formatsTried?: string;
  bytesIn?: number;
  bytesOut?: number;
  dimsIn?: string;
  dimsOut?: string;
  quality?: number;
  fetchMs?: number;
  transformMs?: number;
  totalMs?: number;
  error?: string;
}

/**
 * A fresh hit answered from the cache alone: no origin request, no transform, no error. The lines
 * `log.hits: false` (IMGEDGE_LOG_HITS=0) leaves out. An expired entry renewed at the origin is
 * answered as a HIT too, but it was produced (fetchMs is set), so it keeps its line.
 */
export function isPlainHit(log: RequestLog): boolean {
  return log.cache === 'HIT' && log.fetchMs === undefined && log.error === undefined && (log.status ?? 0) < 400;
}
