/**
 * One Kraken optimization: a source's bytes and the caller's options in, one result per output
 * (one, or one per resize set) stored for download. The same stages the edge's misses use:
 * identify, the imgix parameters, renderVariant under the shared transform limiter; a lossless
 * JPEG that keeps its size goes through jpegtran instead, never a re-encode.
 */
import { performance } from 'node:perf_hooks';
import { EdgeError } from '../errors.js';
import { isCleanOriginal } from '../transform/clean-original.js';
import { CONTENT_TYPES } from '../transform/encode.js';
import { exifToKeep } from '../transform/exif.js';
import { identify } from '../transform/identify.js';
import { optimizeJpegLosslessly } from '../transform/lossless-jpeg.js';
import { refuseOversizedSource } from '../transform/pipeline.js';
import type { TransformLimiter } from '../transform/limiter.js';
import { chooseOutput } from '../transform/negotiate.js';
import { renderVariant } from '../transform/optimize.js';
import { distinctColoursInWorker } from '../transform/quality-pool.js';
import type { EncodePolicy, ImageInfo, OutputFormat, TransformLimits } from '../transform/types.js';
import { paramsFor, requestedFormat, type KrakenOptions, type ResizeSet } from './options.js';
import { newResultId, safeFileName, type ResultStore } from './results.js';
import type { S3Writer } from './s3-store.js';

export interface JobDeps {
  limiter: TransformLimiter;
  limits: TransformLimits;
  results: ResultStore;
  s3: S3Writer;
  /** count the source's distinct colours (for the log record) */
  countColours: boolean;
  /** base of kraked_url, without a trailing slash (absolute for the API, a path for the web optimizer) */
  publicUrl: string;
  /** the owner the stored results are readable by (the web optimizer's session); none for the API */
  owner?: string;
}

export interface OutputResult {
  file_name: string;
  original_size: number;
  kraked_size: number;
  saved_bytes: number;
  kraked_url: string;
  original_width: number;
  original_height: number;
  kraked_width?: number;
  kraked_height?: number;
}

/** What the answer (and the log record) says about the job. */
export interface JobResult {
  /** Kraken's body: one output's fields, or `results` by resize id */
  body: Record<string, unknown>;
  info: ImageInfo;
  /** distinct colours of the source (undefined past the size counted) */
  colours: number | undefined;
  outputs: OutputResult[];
  /** each output's pixels as shown ("600x400"), resized or not */
  dims: string[];
  ms: number;
}

const EXTENSIONS: Record<OutputFormat, string> = { jpeg: 'jpg', png: 'png', gif: 'gif', webp: 'webp', avif: 'avif' };

/** The output format: the one asked for, else the source's own (TIFF and HEIF become JPEG, or PNG with alpha). */
function outputFormat(o: KrakenOptions, info: ImageInfo): OutputFormat {
  const asked = requestedFormat(o);
  if (asked) return asked;
  if (info.format === 'svg') throw new EdgeError('EDGE_NOT_AN_IMAGE', 'SVG is not optimized here; ask for "convert" to a raster format');
  if (info.format === 'tiff' || info.format === 'heif') return info.hasAlpha ? 'png' : 'jpeg';
  return info.format;
}

const policyOf = (o: KrakenOptions): EncodePolicy => ({
  qualityTarget: 'high',
  keepIccProfile: o.preserve_meta.includes('profile'),
  keepCopyright: o.preserve_meta.includes('copyright'),
  keepDate: o.preserve_meta.includes('date'),
  keepGeotag: o.preserve_meta.includes('geotag'),
});

async function renderOne(source: Buffer, info: ImageInfo, o: KrakenOptions, resize: ResizeSet | undefined, deps: JobDeps): Promise<{ body: Buffer; format: OutputFormat; width: number; height: number }> {
  const format = outputFormat(o, info);
  const [width, height] = info.orientation >= 5 ? [info.height, info.width] : [info.width, info.height];
  if (!o.lossy && !resize && format === 'jpeg' && info.format === 'jpeg') {
    const body = await optimizeJpegLosslessly(source, {
      keepProfile: o.preserve_meta.includes('profile'),
      exif: exifToKeep(info, policyOf(o)),
      orientation: info.orientation,
      width: info.width,
      height: info.height,
      autoOrient: o.auto_orient,
      timeoutMs: deps.limits.timeoutSeconds * 1000,
    });
    return { body, format, width, height };
  }
  const params = paramsFor(o, resize, info, format);
  const out = chooseOutput(params, info, undefined, { avif: true, avifMaxDimension: Number.MAX_SAFE_INTEGER });
  const { result } = await renderVariant(source, info, params, out, deps.limits, policyOf(o));
  return { body: result.body, format: result.format, width: result.width, height: result.height };
}

/** Runs the job: every output rendered under the shared limiter, stored, described. */
export async function runJob(source: Buffer, fileName: string | undefined, o: KrakenOptions, deps: JobDeps): Promise<JobResult> {
  const started = performance.now();
  const info = await identify(source);
  // Before any work, lossless too (jpegtran has no pixel limit of its own).
  refuseOversizedSource(info, deps.limits);
  // Counted beside the rendering, for the log record only (never a failure), on the worker
  // threads, whose number bounds it: it takes no transform turn, so it never refuses its own job one.
  const counting = !deps.countColours || info.format === 'svg' ? Promise.resolve(undefined) : distinctColoursInWorker(source, info.width, info.height).catch(() => undefined);
  const sets: (ResizeSet | undefined)[] = o.resize === undefined ? [undefined] : Array.isArray(o.resize) ? o.resize : [o.resize];
  const outputs: OutputResult[] = [];
  const dims: string[] = [];
  for (const resize of sets) {
    const rendered = await deps.limiter.run(() => renderOne(source, info, o, resize, deps));
    // Never larger: without a resize or a new format, the source's own bytes win a tie or a loss,
    // if they carry nothing but the image (metadata the caller did not keep must not come back).
    const sameShape = !resize && rendered.format === info.format;
    const body = sameShape && rendered.body.length >= source.length && isCleanOriginal(info, source) ? source : rendered.body;
    const name = safeFileName(fileName, EXTENSIONS[rendered.format], o.convert?.keep_extension ?? false);
    const kraked_url = o.s3_store
      ? await deps.s3.put({ options: o.s3_store, objectKey: resize?.storage_path ?? o.s3_store.path ?? name, body, contentType: CONTENT_TYPES[rendered.format] })
      : `${deps.publicUrl}/${await deps.results.put(newResultId(), name, body, deps.owner)}`;
    dims.push(`${rendered.width}x${rendered.height}`);
    outputs.push({
      file_name: name,
      original_size: source.length,
      kraked_size: body.length,
      saved_bytes: source.length - body.length,
      kraked_url,
      original_width: info.width,
      original_height: info.height,
      ...(resize ? { kraked_width: rendered.width, kraked_height: rendered.height } : {}),
    });
  }
  const body: Record<string, unknown> = Array.isArray(o.resize)
    ? { success: true, results: Object.fromEntries(o.resize.map((r, i) => [r.id!, outputs[i]!])) }
    : { success: true, ...outputs[0]! };
  return { body, info, colours: await counting, outputs, dims, ms: performance.now() - started };
}
