import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { booleanOf, parseParams } from '../transform/params.js';
import { fontTable } from '../transform/text.js';
import { configSchema, type Config } from './schema.js';

/** Every problem found in a config, reported together so one edit fixes them all. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEFAULT_CONFIG_PATH = path.join(projectRoot, 'config/default.json');

type Env = Record<string, string | undefined>;

/** Env variables of DESIGN §2 that override the config (they shape the first, default site). */
function applyEnv(raw: Record<string, any>, env: Env, problems: string[]): void {
  const int = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (!/^\d+$/.test(v)) {
      problems.push(`${name}: "${v}" is not a whole number`);
      return undefined;
    }
    return Number(v);
  };
  const flag = (name: string): boolean | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const value = booleanOf(v);
    if (value === undefined) problems.push(`${name}: "${v}" is not 1, 0, true or false`);
    return value;
  };
  const set = (obj: string, key: string, value: unknown) => {
    if (value === undefined) return;
    raw[obj] = { ...(raw[obj] ?? {}), [key]: value };
  };
  set('server', 'port', int('IMGEDGE_PORT'));
  set('server', 'host', env.IMGEDGE_HOST || undefined);
  set('cache', 'dir', env.IMGEDGE_CACHE_DIR ? path.resolve(env.IMGEDGE_CACHE_DIR) : undefined);
  set('cache', 'maxBytes', int('IMGEDGE_CACHE_MAX_BYTES'));
  set('log', 'level', env.IMGEDGE_LOG_LEVEL || undefined);
  set('log', 'hits', flag('IMGEDGE_LOG_HITS'));
  set('limits', 'transformConcurrency', int('IMGEDGE_TRANSFORM_CONCURRENCY'));
  set('purge', 'token', env.IMGEDGE_PURGE_TOKEN || undefined);
  set('admin', 'token', env.IMGEDGE_ADMIN_TOKEN || undefined);
  set('redis', 'url', env.IMGEDGE_REDIS_URL || undefined);
  set('redis', 'sentinels', env.IMGEDGE_REDIS_SENTINELS ? env.IMGEDGE_REDIS_SENTINELS.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  set('redis', 'masterName', env.IMGEDGE_REDIS_MASTER || undefined);
  set('redis', 'password', env.IMGEDGE_REDIS_PASSWORD || undefined);
  set('redis', 'sentinelPassword', env.IMGEDGE_REDIS_SENTINEL_PASSWORD || undefined);
  set('api', 'port', int('IMGEDGE_API_PORT'));
  set('api', 'host', env.IMGEDGE_API_HOST || undefined);
  set('api', 'publicUrl', env.IMGEDGE_API_PUBLIC_URL || undefined);
  set('api', 'allowNetworks', env.IMGEDGE_API_ALLOW_NETWORKS ? env.IMGEDGE_API_ALLOW_NETWORKS.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  if (env.IMGEDGE_S3_ENDPOINT) raw.api = { ...(raw.api ?? {}), s3: { ...(raw.api?.s3 ?? {}), endpoint: env.IMGEDGE_S3_ENDPOINT } };
  if (env.IMGEDGE_API_KEYS) set('api', 'keys', apiKeysOf(env.IMGEDGE_API_KEYS, problems));
  const origin = env.IMGEDGE_ORIGIN || undefined;
  const ttl = int('IMGEDGE_TTL');
  const signingKey = signingKeyOf(env.IMGEDGE_SIGNING_KEY);
  if (origin !== undefined || ttl !== undefined || signingKey !== undefined) {
    const sites: any[] = Array.isArray(raw.sites) ? [...raw.sites] : [];
    const first = { name: 'default', ...(sites[0] ?? {}) };
    if (origin !== undefined) first.origin = resolveFileOrigin(origin, process.cwd());
    if (ttl !== undefined) first.ttl = ttl;
    if (signingKey !== undefined) first.signing = { keys: [signingKey] };
    sites[0] = first;
    raw.sites = sites;
  }
}

/** IMGEDGE_API_KEYS: "key:secret,key2:secret2". */
function apiKeysOf(value: string, problems: string[]): { key: string; secret: string }[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean).flatMap((pair) => {
    const at = pair.indexOf(':');
    if (at <= 0 || at === pair.length - 1) {
      problems.push('IMGEDGE_API_KEYS: each entry is key:secret');
      return [];
    }
    return [{ key: pair.slice(0, at), secret: pair.slice(at + 1) }];
  });
}

/** IMGEDGE_SIGNING_KEY: an HMAC-SHA256 key, or `imgix-md5:<token>` for URLs signed by imgix's clients. */
function signingKeyOf(value: string | undefined): { key: string; scheme: string } | undefined {
  if (!value) return undefined;
  const imgix = /^imgix-md5:(.+)$/.exec(value);
  return imgix ? { key: imgix[1]!, scheme: 'imgix-md5' } : { key: value, scheme: 'hmac-sha256' };
}

/** `file:` origins and cache dirs written relative are relative to the file that names them. */
function resolveFileOrigin(origin: string, base: string): string {
  if (!/^file:/i.test(origin)) return origin;
  const rest = origin.replace(/^file:(\/\/)?/i, '');
  return `file://${path.resolve(base, decodeURIComponent(rest))}`;
}

/** Checked apart from the schema so it is reported even when other fields are wrong too. */
function duplicateSiteNames(sites: unknown): string[] {
  if (!Array.isArray(sites)) return [];
  const seen = new Set<unknown>();
  return sites.flatMap((site, i) => {
    const name = (site as { name?: unknown })?.name;
    if (name === undefined || !seen.has(name)) {
      seen.add(name);
      return [];
    }
    return [`sites.${i}.name: duplicate site name "${String(name)}"`];
  });
}

/** A site's default parameters must parse, or every image of the site would answer 400. */
function badSiteDefaults(sites: unknown, fonts: unknown): string[] {
  if (!Array.isArray(sites)) return [];
  const table = fontTable(typeof fonts === 'object' && fonts !== null ? (fonts as Record<string, string>) : undefined);
  return sites.flatMap((site, i) => {
    const defaults = (site as { defaults?: unknown })?.defaults;
    if (typeof defaults !== 'string') return [];
    try {
      parseParams(new URLSearchParams(defaults), table);
      return [];
    } catch (err) {
      return [`sites.${i}.defaults: ${(err as Error).message}`];
    }
  });
}

function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
}

export async function loadConfig(env: Env = process.env): Promise<Config> {
  const file = env.IMGEDGE_CONFIG ? path.resolve(env.IMGEDGE_CONFIG) : DEFAULT_CONFIG_PATH;
  let raw: Record<string, any>;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`${file}: ${(err as Error).message}`]);
  }
  return parseConfig(raw, env, path.dirname(file));
}

/** Validates a config object (relative paths resolved against baseDir) with env overrides. */
export function parseConfig(input: unknown, env: Env = {}, baseDir = process.cwd()): Config {
  const problems: string[] = [];
  const raw: Record<string, any> = typeof input === 'object' && input !== null ? structuredClone(input) : {};
  if (Array.isArray(raw.sites)) {
    raw.sites = raw.sites.map((s: any) =>
      typeof s?.origin === 'string' ? { ...s, origin: resolveFileOrigin(s.origin, baseDir) } : s,
    );
  }
  if (typeof raw.cache?.dir === 'string') raw.cache = { ...raw.cache, dir: path.resolve(baseDir, raw.cache.dir) };
  applyEnv(raw, env, problems);
  problems.push(...duplicateSiteNames(raw.sites), ...badSiteDefaults(raw.sites, raw.text?.fonts));
  const result = configSchema.safeParse(raw);
  if (!result.success) problems.push(...formatIssues(result.error));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  const cfg = result.data;
  cfg.cache.dir = path.resolve(baseDir, cfg.cache.dir);
  return cfg;
}
