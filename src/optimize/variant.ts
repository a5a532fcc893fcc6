import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { remainingCacheControl } from '../cache/policy.js';
import type { CacheEntry, CacheKey } from '../cache/types.js';
import { identify } from '../transform/identify.js';
import { chooseOutput, fallbackOutput, type AcceptedFormats } from '../transform/negotiate.js';
import { renderVariant } from '../transform/optimize.js';
import { describeMetadata, describeRendered } from '../transform/pipeline.js';
import type { ImageInfo, OutputFormat, TransformLimits, TransformParams, TransformResult } from '../transform/types.js';
import { EdgeError } from '../errors.js';
import { loadMark } from './mark-source.js';
import { loadSource, type Source, type SourceDeps, type SourceRequest } from './source.js';

export interface VariantRequest extends SourceRequest {
  key: CacheKey;
  params: TransformParams;
  accepted: AcceptedFormats | undefined;
  /** the expired entry of this variant, if the cache still holds one */
  stale?: CacheEntry;
}

export interface VariantDeps extends SourceDeps {
  limits: TransformLimits;
  observeTransform(format: string, seconds: number): void;
}

/** A produced response body and what the log line wants to know about it. */
export interface Variant {
  entry: CacheEntry;
  /** stored in the cache (false: the origin forbids it, or the original was served on error) */
  cacheable: boolean;
  /** not an image response at all: served as the origin sent it */
  bypass: boolean;
  /** Cache-Control for clients on this miss */
  cacheControl: string;
  /** an expired entry renewed (its source had not changed): no transform was needed */
  renewed?: boolean;
  info?: ImageInfo;
  result?: TransformResult;
  /** the formats encoded to choose the answer's (auto=format may try a fallback) */
  formatsTried?: OutputFormat[];
  fetchMs: number;
  transformMs: number;
}

export function strongEtag(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

function entryFor(req: VariantRequest, source: Source, body: Buffer, contentType: string, headers: Record<string, string>): CacheEntry {
  return {
    meta: {
      key: req.key.variant,
      sourceHash: req.key.sourceHash,
      variantHash: req.key.variantHash,
      source: req.key.source,
      contentType,
      etag: strongEtag(body),
      size: body.length,
      createdAt: Date.now(),
      expiresAt: source.expiresAt,
      tags: source.tags,
      headers,
      ...(source.validator ? { validator: source.validator } : {}),
    },
    body,
  };
}

/** The miss path: source → identify → negotiate → transform → never-larger check. */
export async function produceVariant(req: VariantRequest, deps: VariantDeps): Promise<Variant> {
  let source = await loadSource(req, deps);
  let params = req.params;
  // Save-Data (ch=save-data): the perceptual search aims at the site's lowest target.
  const policy = params.saveData ? { ...req.site.policy, qualityTarget: 'low' as const } : req.site.policy;
  let base = {
    cacheable: source.policy.cacheable,
    cacheControl: source.policy.cacheable ? remainingCacheControl(source.expiresAt) : source.policy.cacheControl,
    fetchMs: source.fetchMs,
    transformMs: 0,
  };
  // The source has not changed since this variant was made: a new lifetime, no transform (not
  // for a watermarked one: its mark may have changed).
  const { stale } = req;
  if (stale && !params.mark && source.validator !== undefined && stale.meta.validator === source.validator) {
    deps.metrics.variantsRenewed.inc();
    const entry = { meta: { ...stale.meta, createdAt: Date.now(), expiresAt: source.expiresAt }, body: stale.body };
    return { ...base, entry, bypass: false, renewed: true };
  }
  let info: ImageInfo;
  try {
    info = await identify(source.body);
  } catch (err) {
    // Not an image and not claimed to be one: hand it over as the origin sent it.
    if (err instanceof EdgeError && err.code === 'EDGE_NOT_AN_IMAGE' && !source.contentType.startsWith('image/')) {
      const entry = entryFor(req, source, source.body, source.contentType, {});
      return { ...base, entry, cacheable: false, bypass: true, cacheControl: source.policy.cacheControl };
    }
    return onBadImage(err, req, source, base);
  }
  const headers = { 'x-original-bytes': String(source.body.length) };
  if (params.fm === 'json') {
    const json = Buffer.from(JSON.stringify(describeMetadata(info)));
    return { ...base, entry: entryFor(req, source, json, 'application/json', headers), bypass: false, info };
  }
  if (params.mark) {
    // A watermark is a second source: the variant lives as long as both (cached only if both may
    // be), and a purge of either reaches it (the mark's tag).
    const mark = await loadMark(req.site, params.mark.src, req.epoch, deps);
    const cacheable = base.cacheable && mark.source.policy.cacheable;
    source = { ...source, expiresAt: Math.min(source.expiresAt, mark.source.expiresAt), tags: [...source.tags, mark.tag] };
    base = { ...base, cacheable, cacheControl: cacheable ? remainingCacheControl(source.expiresAt) : base.cacheable ? mark.source.policy.cacheControl : base.cacheControl };
    params = { ...params, markImage: mark.source.body };
  }
  if (params.palette || params.fm === 'blurhash') {
    const started = performance.now();
    try {
      const { body, contentType } = await describeRendered(source.body, info, params, deps.limits, policy);
      return { ...base, entry: entryFor(req, source, body, contentType, headers), bypass: false, info, transformMs: performance.now() - started };
    } catch (err) {
      return onBadImage(err, req, source, base);
    }
  }
  const out = chooseOutput(params, info, req.accepted, req.site.config.formats);
  const limits = { ...deps.limits, avifEffort: req.site.config.formats.avifEffort };
  const started = performance.now();
  const fallback = fallbackOutput(params, info, req.accepted, out);
  let result: TransformResult;
  let formatsTried: OutputFormat[];
  try {
    ({ result, tried: formatsTried } = await renderVariant(source.body, info, params, out, limits, policy, fallback));
  } catch (err) {
    return onBadImage(err, req, source, base);
  }
  const transformMs = performance.now() - started;
  deps.observeTransform(result.format, transformMs / 1000);
  if (result.quality !== undefined) Object.assign(headers, { 'x-quality': String(result.quality) });
  const entry = entryFor(req, source, result.body, result.contentType, headers);
  return { ...base, entry, bypass: false, info, result, formatsTried, transformMs };
}

function onBadImage(err: unknown, req: VariantRequest, source: Source, base: Omit<Variant, 'entry' | 'bypass'>): Variant {
  if (err instanceof EdgeError && err.code === 'EDGE_BAD_IMAGE' && req.site.config.onError === 'original') {
    const entry = entryFor(req, source, source.body, source.contentType, {});
    return { ...base, entry, cacheable: false, bypass: true, cacheControl: 'no-store' };
  }
  throw err;
}
