import type { CacheEntryMeta } from './types.js';

/**
 * On-disk entry layout: 8-byte magic, uint32 BE header length, UTF-8 JSON CacheEntryMeta, body.
 * The body length is recorded in the header, so a torn or truncated file is always detectable.
 */
const MAGIC = Buffer.from('IMGEDGE1', 'latin1');
export const PREFIX_BYTES = MAGIC.length + 4;
/** Headers are small (key, headers, tags); anything larger is corruption. */
export const MAX_HEADER_BYTES = 1 << 20;

/** The bytes written before the body. */
export function encodeEntryHeader(meta: CacheEntryMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix);
  prefix.writeUInt32BE(json.length, MAGIC.length);
  return Buffer.concat([prefix, json]);
}

/**
 * Length of the JSON header announced by the prefix, or undefined when the magic is wrong or the
 * length is implausible. `buf` must hold at least PREFIX_BYTES.
 */
export function headerLengthOf(buf: Buffer): number | undefined {
  if (buf.length < PREFIX_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const length = buf.readUInt32BE(MAGIC.length);
  return length > 0 && length <= MAX_HEADER_BYTES ? length : undefined;
}

/**
 * The meta and where the body starts, or undefined when the header is damaged or the file's
 * total length is not exactly prefix + header + meta.size.
 */
export function parseEntryHeader(
  buf: Buffer,
  fileSize: number,
): { meta: CacheEntryMeta; bodyOffset: number } | undefined {
  const length = headerLengthOf(buf);
  if (length === undefined || buf.length < PREFIX_BYTES + length) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(buf.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + length));
  } catch {
    return undefined;
  }
  if (!isEntryMeta(meta)) return undefined;
  const bodyOffset = PREFIX_BYTES + length;
  return fileSize === bodyOffset + meta.size ? { meta, bodyOffset } : undefined;
}

function isEntryMeta(value: unknown): value is CacheEntryMeta {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    typeof m.key === 'string' &&
    typeof m.sourceHash === 'string' &&
    typeof m.variantHash === 'string' &&
    typeof m.source === 'string' &&
    typeof m.contentType === 'string' &&
    typeof m.etag === 'string' &&
    Number.isSafeInteger(m.size) &&
    (m.size as number) >= 0 &&
    typeof m.createdAt === 'number' &&
    typeof m.expiresAt === 'number' &&
    Array.isArray(m.tags) &&
    m.tags.every((t) => typeof t === 'string') &&
    typeof m.headers === 'object' &&
    m.headers !== null
  );
}
