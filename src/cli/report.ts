/** What a run tells: one line per file, a total line, or Kraken.io-shaped JSON. */
import type { FileResult } from './optimize-file.js';

/** Kraken.io's per-file result fields. */
export interface KrakenResult {
  file_name: string;
  original_size: number;
  kraked_size: number;
  saved_bytes: number;
  original_width: number | null;
  original_height: number | null;
  success: boolean;
  quality: number | null;
  /** `CODE: message` for a file that failed or was skipped */
  error?: string;
  skipped?: true;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB'];
  let v = n / 1000;
  let i = 0;
  for (; v >= 1000 && i < units.length - 1; i++) v /= 1000;
  return `${v.toFixed(1)} ${units[i]}`;
}

/** `-12.3 %` of the bytes saved; `0.0 %` when nothing was. */
function savedPercent(before: number, after: number): string {
  const pct = before > 0 ? ((before - after) / before) * 100 : 0;
  return `${pct > 0 ? '-' : ''}${pct.toFixed(1)} %`;
}

export function fileLine(r: FileResult): string {
  switch (r.status) {
    case 'skipped':
      return `${r.file}  skipped (${r.reason})`;
    case 'failed':
      return `${r.file}  failed ${r.errorCode}: ${r.reason}`;
    default: {
      const q = r.quality !== undefined ? `  q=${r.quality}` : '';
      const note = r.status === 'unchanged' ? '  (kept original: not smaller)' : '';
      return `${r.file}  ${formatBytes(r.before)} → ${formatBytes(r.after)}  (${savedPercent(r.before, r.after)})${q}${note}`;
    }
  }
}

/** Bytes before and after over the images (skipped files do not count). */
function totals(results: FileResult[]): { before: number; after: number } {
  const images = results.filter((r) => r.status === 'optimized' || r.status === 'unchanged');
  return { before: images.reduce((s, r) => s + r.before, 0), after: images.reduce((s, r) => s + r.after, 0) };
}

export function totalLine(results: FileResult[]): string {
  const count = (s: FileResult['status']) => results.filter((r) => r.status === s).length;
  const { before, after } = totals(results);
  return `total  ${count('optimized')} optimized, ${count('unchanged')} unchanged, ${count('skipped')} skipped, ${count('failed')} failed  ` +
    `${before} B → ${after} B  (${savedPercent(before, after)}, ${formatBytes(before - after)} saved)`;
}

export function krakenResult(r: FileResult): KrakenResult {
  const ok = r.status === 'optimized' || r.status === 'unchanged';
  return {
    file_name: r.file,
    original_size: r.before,
    kraked_size: r.after,
    saved_bytes: r.before - r.after,
    original_width: r.width ?? null,
    original_height: r.height ?? null,
    success: ok,
    quality: r.quality ?? null,
    ...(ok ? {} : { error: `${r.errorCode}: ${r.reason}` }),
    ...(r.status === 'skipped' ? { skipped: true as const } : {}),
  };
}
