import { parseSourceString } from './key.js';
import type { EntrySelector } from './types.js';

/** Whether a purge selector selects an entry with these tags and this canonical source string. */
export function selects(selector: EntrySelector, entry: { tags: string[]; source: string }): boolean {
  if (entry.tags.some((t) => selector.tags.includes(t))) return true;
  if (selector.prefixes.length === 0) return false;
  const source = parseSourceString(entry.source);
  return source !== undefined && selector.prefixes.some((p) => p.site === source.site && source.path.startsWith(p.prefix));
}
