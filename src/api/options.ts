/**
 * Kraken's request options, validated, and turned into the edge's own imgix parameters: the API
 * is a second front end on the same optimizer, so a resize strategy here is a fit there.
 */
import { z } from 'zod';
import { EdgeError } from '../errors.js';
import { parseParams } from '../transform/params.js';
import { s3Schema } from './s3-store.js';
import type { ImageInfo, OutputFormat, TransformParams } from '../transform/types.js';

const hexColor = z.string().regex(/^#?([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/i, 'a hex colour such as #ffffff');
const STRATEGIES = ['exact', 'portrait', 'landscape', 'auto', 'fit', 'crop', 'square', 'fill'] as const;
const CROP_MODES = ['c', 't', 'b', 'l', 'r', 'tl', 'tr', 'bl', 'br'] as const;
const dimension = z.number().int().min(1).max(16_384);

const resizeSchema = z
  .object({
    id: z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -').optional(),
    strategy: z.enum(STRATEGIES).default('auto'),
    width: dimension.optional(),
    height: dimension.optional(),
    size: dimension.optional(),
    background: hexColor.optional(),
    crop_mode: z.enum(CROP_MODES).default('c'),
    /** where this size goes in the caller's S3 bucket (s3_store) */
    storage_path: z.string().min(1).max(1024).optional(),
  })
  .passthrough()
  .superRefine((r, ctx) => {
    const need = (field: 'width' | 'height' | 'size') => {
      if (r[field] === undefined) ctx.addIssue({ code: 'custom', message: `strategy "${r.strategy}" needs ${field}`, path: [field] });
    };
    switch (r.strategy) {
      case 'portrait': need('height'); break;
      case 'landscape': need('width'); break;
      case 'square': need('size'); break;
      default: need('width'); need('height');
    }
  });

const META = ['profile', 'date', 'copyright', 'geotag', 'orientation'] as const;

export const optionsSchema = z
  .object({
    auth: z.unknown().optional(),
    url: z.string().max(8192).optional(),
    wait: z.boolean().optional(),
    callback_url: z.string().max(2048).optional(),
    lossy: z.boolean().default(false),
    quality: z.number().int().min(1).max(100).optional(),
    resize: z.union([resizeSchema, z.array(resizeSchema).min(1).max(10)]).optional(),
    convert: z
      .object({ format: z.enum(['jpeg', 'jpg', 'png', 'gif', 'webp', 'avif']), background: hexColor.optional(), keep_extension: z.boolean().default(false) })
      .passthrough()
      .optional(),
    webp: z.boolean().default(false),
    auto_orient: z.boolean().default(false),
    preserve_meta: z.array(z.enum(META)).default([]),
    sampling_scheme: z.enum(['4:2:0', '4:2:2', '4:4:4']).optional(),
    s3_store: s3Schema.optional(),
    dev: z.boolean().optional(),
  })
  .passthrough()
  .superRefine((o, ctx) => {
    if (o.wait !== true && o.callback_url === undefined) ctx.addIssue({ code: 'custom', message: 'give "wait": true or a "callback_url"', path: ['wait'] });
    if (o.wait === true && o.callback_url !== undefined) ctx.addIssue({ code: 'custom', message: '"wait" and "callback_url" exclude each other', path: ['callback_url'] });
    if (o.s3_store && Array.isArray(o.resize) && o.resize.some((r) => r.storage_path === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'with s3_store, each resize set needs a "storage_path"', path: ['resize'] });
    }
    if (Array.isArray(o.resize)) {
      const ids = o.resize.map((r) => r.id);
      if (ids.some((id) => id === undefined)) ctx.addIssue({ code: 'custom', message: 'each resize set in an array needs an "id"', path: ['resize'] });
      if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', message: 'resize set ids must differ', path: ['resize'] });
    }
  });

export type KrakenOptions = z.output<typeof optionsSchema>;
export type ResizeSet = z.output<typeof resizeSchema>;

/** Options from a request body, or a 400 naming the first problem. */
export function parseOptions(body: unknown): KrakenOptions {
  const result = optionsSchema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.join('.');
  throw new EdgeError('EDGE_BAD_PARAM', where ? `${where}: ${issue.message}` : issue.message, { param: where || 'body' });
}

/** The format asked for (convert, else webp: true), or undefined to keep the source's. */
export function requestedFormat(o: KrakenOptions): OutputFormat | undefined {
  if (o.convert) return o.convert.format === 'jpg' ? 'jpeg' : o.convert.format;
  return o.webp ? 'webp' : undefined;
}

const FM: Record<OutputFormat, string> = { jpeg: 'jpg', png: 'png', gif: 'gif', webp: 'webp', avif: 'avif' };
const hex = (c: string) => c.replace(/^#/, '');

/** The region a `crop` strategy keeps: the box at the crop_mode's side or corner, at full scale. */
function cropRect(r: ResizeSet, info: ImageInfo): string {
  const [W, H] = info.orientation >= 5 ? [info.height, info.width] : [info.width, info.height];
  const w = Math.min(r.width!, W);
  const h = Math.min(r.height!, H);
  const mode: string = r.crop_mode;
  const x = mode.includes('l') ? 0 : mode.includes('r') ? W - w : Math.floor((W - w) / 2);
  const y = mode.includes('t') ? 0 : mode.includes('b') ? H - h : Math.floor((H - h) / 2);
  return `${x},${y},${w},${h}`;
}

function resizeParams(r: ResizeSet, info: ImageInfo, q: URLSearchParams): void {
  const set = (k: string, v: number | string | undefined) => v !== undefined && q.set(k, String(v));
  switch (r.strategy) {
    case 'exact': set('w', r.width); set('h', r.height); set('fit', 'scale'); break;
    case 'portrait': set('h', r.height); set('fit', 'clip'); break;
    case 'landscape': set('w', r.width); set('fit', 'clip'); break;
    case 'auto': set('w', r.width); set('h', r.height); set('fit', 'clip'); break;
    case 'fit': set('w', r.width); set('h', r.height); set('fit', 'crop'); break;
    case 'square': set('w', r.size); set('h', r.size); set('fit', 'crop'); break;
    case 'crop': set('rect', cropRect(r, info)); break;
    case 'fill':
      set('w', r.width); set('h', r.height); set('fit', 'fill');
      q.set('fill', 'solid');
      set('fill-color', hex(r.background ?? '#ffffff'));
      break;
  }
}

/**
 * The imgix parameters of one output: lossy → q (or the per-image perceptual search when no
 * quality is given); lossless → lossless encoders where the format has one (PNG, WebP, AVIF),
 * else a high fixed quality where pixels must be re-encoded (a resized JPEG).
 */
export function paramsFor(o: KrakenOptions, resize: ResizeSet | undefined, info: ImageInfo, format: OutputFormat): TransformParams {
  const q = new URLSearchParams();
  q.set('fm', FM[format]);
  if (resize) resizeParams(resize, info, q);
  if (o.convert?.background) q.set('bg', hex(o.convert.background));
  if (o.sampling_scheme) q.set('chromasub', o.sampling_scheme.replaceAll(':', ''));
  if (o.lossy) {
    if (o.quality !== undefined) q.set('q', String(o.quality));
    else if (format !== 'gif') q.set('auto', 'compress');
  } else if (format === 'webp' || format === 'avif') {
    q.set('lossless', '1');
  } else if (format === 'jpeg') {
    q.set('q', String(o.quality ?? LOSSLESS_REENCODE_QUALITY));
  }
  return parseParams(q).params;
}

/** A lossless request whose JPEG must be re-encoded (resized, converted) keeps this quality. */
export const LOSSLESS_REENCODE_QUALITY = 92;
