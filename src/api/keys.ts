/**
 * API keys: a key and a secret, as Kraken's clients send them in every body's `auth`. Only the
 * secret's SHA-256 is kept (secrets are long random strings, so a fast hash is enough; the
 * comparison is constant-time). Usage per key (bytes of originals optimized) is kept in a small
 * JSON file beside the results, so a quota survives restarts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
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
  private usage: Record<string, { bytes: number; requests: number }> = {};
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(keys: readonly ApiKeyConfig[], private readonly usageFile: string) {
    for (const k of keys) {
      const hash = k.secret !== undefined ? sha256(k.secret) : Buffer.from(k.secretSha256!, 'hex');
      this.byKey.set(k.key, { key: k.key, hash, ...(k.secret !== undefined ? { secret: k.secret } : {}), ...(k.quotaBytes ? { quotaBytes: k.quotaBytes } : {}) });
    }
  }

  static async open(keys: readonly ApiKeyConfig[], usageFile: string): Promise<ApiKeys> {
    const store = new ApiKeys(keys, usageFile);
    try {
      store.usage = JSON.parse(await readFile(usageFile, 'utf8')) as ApiKeys['usage'];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return store;
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

  used(key: string): { bytes: number; requests: number } {
    return this.usage[key] ?? { bytes: 0, requests: 0 };
  }

  /** Refuses work once the key's quota is used up. */
  checkQuota(key: ApiKey): void {
    if (key.quotaBytes !== undefined && this.used(key.key).bytes >= key.quotaBytes) {
      throw new EdgeError('EDGE_QUOTA_EXCEEDED', `the quota of ${key.quotaBytes} bytes for this key is used up`);
    }
  }

  /** Counts an optimization (its original's bytes) against the key. */
  count(key: string, bytes: number): void {
    const u = this.used(key);
    this.usage[key] = { bytes: u.bytes + bytes, requests: u.requests + 1 };
    this.scheduleSave();
  }

  private scheduleSave(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.saving = this.saving.then(async () => {
      this.dirty = false;
      const tmp = `${this.usageFile}.tmp`;
      await mkdir(path.dirname(this.usageFile), { recursive: true });
      await writeFile(tmp, JSON.stringify(this.usage));
      await rename(tmp, this.usageFile);
    }).catch(() => {});
  }

  /** Waits for the last usage write. */
  flush(): Promise<void> {
    return this.saving;
  }
}
