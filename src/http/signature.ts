import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { EdgeError } from '../errors.js';

/**
 * A site's signing key. `imgix-md5` is imgix's scheme, so imgix's client libraries sign for us
 * unchanged; `hmac-sha256` is the stronger default. The key is used as its UTF-8 bytes.
 */
export interface SigningKey {
  key: string;
  scheme: 'hmac-sha256' | 'imgix-md5';
}

/**
 * A request target as it travels in a request line: printable ASCII, no spaces. Refusing anything
 * else also shuts out MD5 length extension, whose glue padding always holds NUL bytes.
 */
const REQUEST_TARGET = /^[\x21-\x7e]*$/;
const HEX = /^[0-9a-f]+$/;

function digest(message: string, { key, scheme }: SigningKey): Buffer {
  return scheme === 'imgix-md5'
    ? createHash('md5').update(key + message).digest()
    : createHmac('sha256', key).update(message).digest();
}

/** Index of the `?` or `&` that opens a trailing `s=`, or -1 when the query has none. */
function signatureStart(raw: string, queryStart: number): number {
  if (queryStart < 0) return -1;
  const lastAmp = raw.lastIndexOf('&s=');
  if (lastAmp > queryStart) return lastAmp;
  return raw.startsWith('s=', queryStart + 1) ? queryStart : -1;
}

function badSignature(message: string): EdgeError {
  return new EdgeError('EDGE_BAD_SIGNATURE', message);
}

/**
 * Throws EdgeError('EDGE_BAD_SIGNATURE') unless `rawPathAndQuery` (exactly as in the request
 * line, e.g. '/a%20b.jpg?w=300&auto=format&s=…') carries a valid `s` for one of the keys.
 *
 * `s` must be the last parameter, spelled literally `s=`, its value hex and nothing else; the
 * signed string is everything before its `?s=` / `&s=`. No other parameter may decode to `s`.
 * So whatever the query parser later reads, apart from `s` itself, is exactly what was signed.
 * An empty key list, or an empty key, accepts nothing.
 */
export function verifySignature(rawPathAndQuery: string, keys: SigningKey[]): void {
  const raw = rawPathAndQuery;
  if (!REQUEST_TARGET.test(raw)) throw badSignature('the URL must be sent percent-encoded to be signed');
  const queryStart = raw.indexOf('?');
  const cut = signatureStart(raw, queryStart);
  if (cut < 0) throw badSignature('the URL must end with a signature parameter s');

  // The signed string: the exact path and query before `s`, nothing decoded or reordered.
  const signed = raw.slice(0, cut);
  const given = raw.slice(cut + 3).toLowerCase();
  if (new URLSearchParams(signed.slice(queryStart + 1)).has('s')) throw badSignature('the signature parameter s must appear once, last');
  if (!HEX.test(given)) throw badSignature('the signature s must be hex and the last parameter');

  // Every key is tried, each compare in constant time, so timing tells nothing about a near miss.
  let valid = false;
  for (const key of keys) {
    if (!key.key) continue;
    const expected = digest(signed, key);
    if (given.length === expected.length * 2) valid = timingSafeEqual(Buffer.from(given, 'hex'), expected) || valid;
  }
  if (!valid) throw badSignature('the signature does not match');
}

/**
 * For docs, tests and tools: the URL with its signature appended. `pathAndQuery` must be exactly
 * what will be sent (already percent-encoded) and carry no `s`.
 */
export function signPath(pathAndQuery: string, key: SigningKey): string {
  if (!REQUEST_TARGET.test(pathAndQuery)) throw new Error('sign the percent-encoded URL (printable ASCII only)');
  if (!key.key) throw new Error('a signing key must not be empty');
  const s = digest(pathAndQuery, key).toString('hex');
  return `${pathAndQuery}${pathAndQuery.includes('?') ? '&' : '?'}s=${s}`;
}
