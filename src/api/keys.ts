/**
 * API keys: a key and a secret, as Kraken's clients send them in every body's `auth`. Secrets are
 * compared by their SHA-256 (they are long random strings, so a fast hash is enough; the
 * comparison is constant-time); a secret given in clear is kept too, as webhooks are signed with
 * it. What each key uses is counted in usage.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { EdgeError } from '../errors.js';

export interface ApiKeyConfig {
  key: string;
  secret?: string | undefined;
  secretSha256?: string | undefined;
  quotaBytes?: number | undefined;
}

export interface ApiKey {
  key: string;
  /** the secret, for signing webhooks; only known when configured in clear */
  secret?: string;
  quotaBytes?: number;
}

interface KeyRecord extends ApiKey {
  hash: Buffer;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class ApiKeys {
  private readonly byKey = new Map<string, KeyRecord>();

  constructor(keys: readonly ApiKeyConfig[]) {
    for (const k of keys) {
      const hash = k.secret !== undefined ? sha256(k.secret) : Buffer.from(k.secretSha256!, 'hex');
      this.byKey.set(k.key, { key: k.key, hash, ...(k.secret !== undefined ? { secret: k.secret } : {}), ...(k.quotaBytes ? { quotaBytes: k.quotaBytes } : {}) });
    }
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The key the body's `auth` names, when its secret matches. */
  authenticate(auth: unknown): ApiKey {
    const a = (auth ?? {}) as { api_key?: unknown; api_secret?: unknown };
    if (typeof a.api_key !== 'string' || typeof a.api_secret !== 'string') {
      throw new EdgeError('EDGE_UNAUTHORIZED', 'Authentication required: send auth.api_key and auth.api_secret');
    }
    const record = this.byKey.get(a.api_key);
    // Hash even for an unknown key, so timing does not tell which keys exist.
    const given = sha256(a.api_secret);
    if (!record || !timingSafeEqual(given, record.hash)) throw new EdgeError('EDGE_UNAUTHORIZED', 'Unknown API Key or wrong API secret. Please check your credentials and try again.');
    return record;
  }

  /**
   * What webhooks of `key` are signed with: its secret, or for a key configured by its hash, the
   * hash's hex (the caller can compute it from the secret it holds). Undefined for an unknown key.
   */
  signingSecret(key: string): string | undefined {
    const record = this.byKey.get(key);
    return record && (record.secret ?? record.hash.toString('hex'));
  }

  /** A configured key by name (without authentication: for work the edge counts itself, the web optimizer's). */
  known(key: string): ApiKey | undefined {
    return this.byKey.get(key);
  }
}
