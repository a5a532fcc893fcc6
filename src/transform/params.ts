/**
 * imgix Rendering API parameters → a validated, normalized TransformParams plus the canonical
 * string that enters the cache key. Every bad value is a 400 EDGE_BAD_PARAM naming the parameter.
 */
import { badParam } from '../errors.js';
import { DEFAULT_FONT, DEFAULT_FONTS, fontKey } from './text.js';
import type { Adjustments, Color, Corners, Fit, FrameParams, MarkParams, ParsedParams, RequestedFormat, TextParams, TransformParams } from './types.js';

/** The longest side any size parameter may ask for, pixels. */
export const MAX_SIZE = 8192;

const FITS: readonly Fit[] = ['clip', 'crop', 'fill', 'fillmax', 'max', 'min', 'scale'];
const CROPS = new Set(['top', 'bottom', 'left', 'right', 'faces', 'entropy', 'edges', 'focalpoint']);
const FORMATS: Record<string, RequestedFormat> = {
  jpg: 'jpg', jpeg: 'jpg', pjpg: 'pjpg', png: 'png', png8: 'png8', webp: 'webp', avif: 'avif', gif: 'gif', json: 'json', blurhash: 'blurhash',
};
const FLIPS: Record<string, 'h' | 'v' | 'hv'> = { h: 'h', v: 'v', hv: 'hv', vh: 'hv' };
/** `or` also takes degrees; these are the EXIF orientations that display the image turned so. */
const OR_DEGREES: Record<number, number> = { 90: 6, 180: 3, 270: 8 };

/** imgix's other names for parameters the edge reads (imgix-url-params' aliases); `or` is imgix's alias of `orient`. */
export const PARAM_ALIASES: Readonly<Record<string, readonly string[]>> = {
  w: ['width'], h: ['height'], fit: ['f'], or: ['orient'], 'fill-color': ['fillcolor'], invert: ['inv'], monochrome: ['mono'],
};

/**
 * Parameters that only shape another one (colors and prefix shape palette, txt-* shape txt, …):
 * alone they change nothing, so alone they do not make a request an image transform (a page's
 * own `?prefix=` or `?colors=` still passes through).
 */
const SHAPING_ONLY: ReadonlySet<string> = new Set([
  'colors', 'prefix', 'usmrad', 'duotone-alpha', 'corner-radius', 'mask-bg',
  'border-top', 'border-right', 'border-bottom', 'border-left', 'border-radius', 'border-radius-inner',
  'txt-size', 'txt-color', 'txt-font', 'txt-align', 'txt-pad', 'txt-width', 'txt-fit', 'txt-shad', 'txt-line', 'txt-line-color',
  'mark-w', 'mark-h', 'mark-fit', 'mark-scale', 'mark-align', 'mark-pad', 'mark-alpha', 'mark-x', 'mark-y', 'mark-tile',
]);

/** Every parameter the edge interprets (plus `s`, the signature, and aliases): stripped from the origin query. */
export const TRANSFORM_PARAM_NAMES: ReadonlySet<string> = new Set([
  'w', 'h', 'dpr', 'fit', 'crop', 'fp-x', 'fp-y', 'ar', 'rect', 'fm', 'q', 'auto', 'lossless',
  'chromasub', 'bg', 'fill-color', 'blur', 'sharp', 'rot', 'flip', 'or', 'trim', 's',
  // adjustments and stylize (adjust.ts)
  'bri', 'con', 'exp', 'gam', 'high', 'shad', 'hue', 'sat', 'vib', 'invert', 'usm', 'usmrad',
  'monochrome', 'duotone', 'duotone-alpha', 'sepia', 'px', 'htn',
  // mask, border, padding (frame.ts)
  'mask', 'corner-radius', 'mask-bg', 'border', 'border-top', 'border-right', 'border-bottom', 'border-left',
  'border-radius', 'border-radius-inner', 'pad', 'pad-top', 'pad-right', 'pad-bottom', 'pad-left',
  // client hints (http/client-hints.ts)
  'ch',
  // watermark (watermark.ts)
  'mark', 'mark64', 'mark-w', 'mark-h', 'mark-fit', 'mark-scale', 'mark-align', 'mark-pad', 'mark-alpha', 'mark-x', 'mark-y', 'mark-tile',
  // text (text.ts)
  'txt', 'txt64', 'txt-size', 'txt-color', 'txt-font', 'txt-align', 'txt-pad', 'txt-width', 'txt-fit', 'txt-shad',
  'txt-line', 'txt-line-color',
  // palette extraction (describe-pixels.ts)
  'palette', 'colors', 'prefix',
  ...Object.values(PARAM_ALIASES).flat(),
]);

const NUMBER = /^\+?(?:\d+(?:\.\d*)?|\.\d+)$/;
const SIGNED = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;
const INTEGER = /^\+?\d+$/;

function number(name: string, raw: string, min: number, max: number): number {
  const v = NUMBER.test(raw.trim()) ? Number(raw) : NaN;
  if (!(v >= min && v <= max)) throw badParam(name, `${name} must be a number from ${min} to ${max}, got "${raw}"`);
  return v;
}

function integer(name: string, raw: string, min: number, max: number): number {
  const v = INTEGER.test(raw.trim()) ? Number(raw) : NaN;
  if (!(v >= min && v <= max)) throw badParam(name, `${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return v;
}

/** A signed amount in imgix's range, rounded to a whole step so near-equal URLs share an entry; 0 is absent. */
function amount(name: string, raw: string, min: number, max: number): number | undefined {
  const v = SIGNED.test(raw.trim()) ? Number(raw) : NaN;
  if (!(v >= min && v <= max)) throw badParam(name, `${name} must be a number from ${min} to ${max}, got "${raw}"`);
  return Math.round(v) || undefined;
}

/** w/h: imgix also reads 0<v<1 as a fraction of the source; we reject it to keep sizes explicit. */
function size(name: string, raw: string): number {
  const v = NUMBER.test(raw.trim()) ? Number(raw) : NaN;
  if (!(v >= 1 && v <= MAX_SIZE)) throw badParam(name, `${name} must be a number of pixels from 1 to ${MAX_SIZE}, got "${raw}"`);
  return v;
}

/** imgix hex colours: RGB, ARGB, RRGGBB, AARRGGBB (alpha first), optional leading '#'. */
export function parseColor(name: string, raw: string): Color {
  const hex = raw.trim().replace(/^#/, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex) || ![3, 4, 6, 8].includes(hex.length)) {
    throw badParam(name, `${name} must be a hex colour of 3, 4, 6 or 8 digits, got "${raw}"`);
  }
  const digits = hex.length <= 4 ? [...hex].map((c) => c + c).join('') : hex;
  const argb = digits.length === 8 ? digits : 'ff' + digits;
  const byte = (i: number) => parseInt(argb.slice(i, i + 2), 16);
  return { r: byte(2), g: byte(4), b: byte(6), alpha: byte(0) / 255 };
}

function colorHex(c: Color): string {
  return [Math.round(c.alpha * 255), c.r, c.g, c.b].map((v) => v.toString(16).padStart(2, '0')).join('');
}

/** 0, 1, true or false (any case, spaces around), as a URL parameter or an env variable says it; undefined for anything else. */
export function booleanOf(raw: string): boolean | undefined {
  const v = raw.trim().toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

function bool(name: string, raw: string): boolean {
  const value = booleanOf(raw);
  if (value === undefined) throw badParam(name, `${name} must be 0, 1, true or false, got "${raw}"`);
  return value;
}

function list(raw: string): string[] {
  return raw.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
}

function parseCrop(raw: string): string[] {
  const modes = list(raw);
  for (const m of modes) {
    if (!CROPS.has(m)) throw badParam('crop', `crop accepts top, bottom, left, right, faces, entropy, edges, focalpoint; got "${m}"`);
  }
  // faces needs face detection, which the edge does not have: accepted, then falls back to the rest.
  return [...new Set(modes.filter((m) => m !== 'faces'))].sort();
}

function parseAr(raw: string): { w: number; h: number } {
  const m = /^([^:]+):([^:]+)$/.exec(raw.trim());
  const w = m?.[1] !== undefined && NUMBER.test(m[1]) ? Number(m[1]) : NaN;
  const h = m?.[2] !== undefined && NUMBER.test(m[2]) ? Number(m[2]) : NaN;
  if (!(w > 0 && h > 0)) throw badParam('ar', `ar must be W:H with positive numbers, got "${raw}"`);
  return { w, h };
}

function parseRect(raw: string): { x: number; y: number; w: number; h: number } {
  const parts = raw.split(',').map((s) => s.trim());
  if (parts.length !== 4 || !parts.every((p) => INTEGER.test(p))) {
    throw badParam('rect', `rect must be x,y,w,h in whole pixels, got "${raw}"`);
  }
  const [x, y, w, h] = parts.map(Number) as [number, number, number, number];
  if (w <= 0 || h <= 0) throw badParam('rect', 'rect width and height must be greater than 0');
  return { x, y, w, h };
}

function parseOr(raw: string): number | undefined {
  const v = INTEGER.test(raw.trim()) ? Number(raw) : NaN;
  const o = v >= 0 && v <= 8 ? v : OR_DEGREES[v];
  if (o === undefined) throw badParam('or', `or must be 0-8, 90, 180 or 270, got "${raw}"`);
  return o === 0 ? undefined : o;
}

function oneOf<T>(name: string, raw: string, table: Record<string, T>): T {
  const v = table[raw.trim().toLowerCase()];
  if (v === undefined) throw badParam(name, `${name} must be one of ${Object.keys(table).join(', ')}, got "${raw}"`);
  return v;
}

/** The longest text drawn from a URL, in characters. */
const MAX_TEXT = 500;
type Align = TextParams['align'];
const ALIGN_V: readonly string[] = ['top', 'middle', 'bottom'];
const ALIGN_H: readonly string[] = ['left', 'center', 'right'];

/** imgix's `*-align`: a vertical and/or a horizontal word, each side keeping `fallback` when not given. */
function parseAlign(name: string, raw: string | undefined, fallback: Align): Align {
  const align = { ...fallback };
  for (const a of raw === undefined ? [] : list(raw)) {
    if (ALIGN_V.includes(a)) align.v = a as Align['v'];
    else if (ALIGN_H.includes(a)) align.h = a as Align['h'];
    else throw badParam(name, `${name} accepts top, middle, bottom, left, center, right; got "${a}"`);
  }
  return align;
}

/** imgix's watermark parameters; undefined without mark (the others only shape it). */
function parseMark(get: (name: string) => string | undefined): MarkParams | undefined {
  const encoded = get('mark64');
  const src = (encoded !== undefined ? base64Value('mark', encoded) : get('mark'))?.trim();
  if (!src) return undefined;
  const path = src.startsWith('/') && !src.startsWith('//') && !src.includes('\\');
  if (!path && !/^https?:\/\//i.test(src)) throw badParam('mark', `mark must be a path on the site (/logo.png) or an http(s) URL, got "${src}"`);
  if (src.length > 2048) throw badParam('mark', 'mark is at most 2048 characters');
  const align = parseAlign('mark-align', get('mark-align'), { v: 'bottom', h: 'right' });
  const dimension = (name: string) => {
    const v = get(name);
    if (v === undefined) return undefined;
    const n = number(name, v, 0, MAX_SIZE);
    if (n === 0 || (n > 1 && !Number.isInteger(n))) throw badParam(name, `${name} must be whole pixels (2–${MAX_SIZE}) or a fraction of the image (0–1), got "${v}"`);
    // Fractions to a thousandth, so near-equal URLs share an entry.
    return n <= 1 ? Math.max(0.001, Math.round(n * 1000) / 1000) : n;
  };
  const m: MarkParams = {
    src,
    fit: oneOf('mark-fit', get('mark-fit') ?? 'clip', { clip: 'clip', crop: 'crop', fill: 'fill', max: 'max', scale: 'scale' } as const),
    align,
    pad: integerOr(get, 'mark-pad', 5, 0, 1000),
    alpha: integerOr(get, 'mark-alpha', 100, 0, 100),
  };
  const w = dimension('mark-w');
  const h = dimension('mark-h');
  const scale = get('mark-scale');
  // mark-scale sizes the mark by itself: mark-w and mark-h are then left out (and out of the key).
  if (scale !== undefined) m.scale = integer('mark-scale', scale, 1, 100);
  else {
    if (w !== undefined) m.w = w;
    if (h !== undefined) m.h = h;
  }
  const x = get('mark-x');
  const y = get('mark-y');
  if (x !== undefined) m.x = integer('mark-x', x, 0, MAX_SIZE);
  if (y !== undefined) m.y = integer('mark-y', y, 0, MAX_SIZE);
  const tile = get('mark-tile');
  if (tile !== undefined) m.tile = oneOf('mark-tile', tile, { grid: 'grid' } as const);
  return m;
}

/** imgix's `name64` form: the value in URL-safe base64 without padding. */
function base64Value(name: string, raw: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(raw)) throw badParam(`${name}64`, `${name}64 must be URL-safe base64 without padding`);
  return Buffer.from(raw, 'base64url').toString('utf8');
}

/** imgix's text parameters; undefined without txt (the others only shape it). */
function parseText(get: (name: string) => string | undefined, fonts: Readonly<Record<string, string>>): TextParams | undefined {
  const encoded = get('txt64');
  const text = encoded !== undefined ? base64Value('txt', encoded) : get('txt');
  if (text === undefined || text.trim() === '') return undefined;
  if ([...text].length > MAX_TEXT) throw badParam('txt', `txt is at most ${MAX_TEXT} characters`);
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) throw badParam('txt', 'txt must not contain control characters');
  const fontName = fontKey(get('txt-font') ?? DEFAULT_FONT);
  const font = fonts[fontName];
  if (!font) throw badParam('txt-font', `txt-font must be one of the configured fonts (${Object.keys(fonts).join(', ')}), got "${get('txt-font')}"`);
  const align = parseAlign('txt-align', get('txt-align'), { v: 'top', h: 'left' });
  const t: TextParams = {
    text,
    fontName,
    font,
    size: integerOr(get, 'txt-size', 12, 1, 1000),
    color: parseColor('txt-color', get('txt-color') ?? '000000'),
    align,
    pad: integerOr(get, 'txt-pad', 10, 0, 1000),
    shadow: Math.round(number('txt-shad', get('txt-shad') ?? '0', 0, 10) * 10) / 10,
    line: integerOr(get, 'txt-line', 0, 0, 50),
    lineColor: parseColor('txt-line-color', get('txt-line-color') ?? 'ffffff'),
  };
  const width = get('txt-width');
  if (width !== undefined) t.width = integer('txt-width', width, 1, MAX_SIZE);
  const fit = get('txt-fit');
  if (fit !== undefined) t.fit = oneOf('txt-fit', fit, { max: 'max' } as const);
  return t;
}

function integerOr(get: (name: string) => string | undefined, name: string, fallback: number, min: number, max: number): number {
  const v = get(name);
  return v === undefined ? fallback : integer(name, v, min, max);
}

/** Widths of a border or padding: 0–1000 px (beyond is no longer a frame but a canvas). */
const MAX_FRAME = 1000;

/** One radius for every corner, or four (top-left, top-right, bottom-right, bottom-left). */
function parseCorners(name: string, raw: string): Corners | undefined {
  const parts = raw.split(',').map((v) => v.trim());
  if (parts.length !== 1 && parts.length !== 4) throw badParam(name, `${name} must be one radius or four (tl,tr,br,bl), got "${raw}"`);
  const radii = parts.map((v) => integer(name, v, 0, 8192));
  const corners = (parts.length === 1 ? [radii[0], radii[0], radii[0], radii[0]] : radii) as Corners;
  return corners.some((r) => r > 0) ? corners : undefined;
}

/** imgix's mask, border and padding parameters; undefined when none has an effect. */
function parseFrame(get: (name: string) => string | undefined): FrameParams | undefined {
  const f: FrameParams = {};
  const mask = get('mask');
  if (mask !== undefined) {
    const shape = mask.trim().toLowerCase();
    if (shape !== 'ellipse' && shape !== 'corners') throw badParam('mask', `mask accepts ellipse or corners (image masks are not supported), got "${mask}"`);
    f.mask = shape;
    const radius = get('corner-radius');
    if (shape === 'corners' && radius !== undefined) {
      const corners = parseCorners('corner-radius', radius);
      if (corners) f.cornerRadius = corners;
    }
    const bg = get('mask-bg');
    if (bg !== undefined) f.maskBg = parseColor('mask-bg', bg);
  }
  const border = get('border');
  if (border !== undefined) {
    const [width, colour, ...rest] = border.split(',');
    if (colour === undefined || rest.length > 0) throw badParam('border', `border must be width,colour (e.g. 10,000000), got "${border}"`);
    const w = integer('border', width!, 0, MAX_FRAME);
    const side = (name: string) => {
      const v = get(name);
      return v === undefined ? w : integer(name, v, 0, MAX_FRAME);
    };
    const sides = { top: side('border-top'), right: side('border-right'), bottom: side('border-bottom'), left: side('border-left') };
    if (sides.top + sides.right + sides.bottom + sides.left > 0) {
      f.border = { sides, color: parseColor('border', colour) };
      const outer = get('border-radius');
      const inner = get('border-radius-inner');
      const radius = outer === undefined ? undefined : parseCorners('border-radius', outer);
      const innerRadius = inner === undefined ? undefined : parseCorners('border-radius-inner', inner);
      if (radius) f.border.radius = radius;
      if (innerRadius) f.border.innerRadius = innerRadius;
    }
  }
  const raw = get('pad');
  const pad = raw === undefined ? 0 : integer('pad', raw, 0, MAX_FRAME);
  const padSide = (name: string) => {
    const v = get(name);
    return v === undefined ? pad : integer(name, v, 0, MAX_FRAME);
  };
  const sides = { top: padSide('pad-top'), right: padSide('pad-right'), bottom: padSide('pad-bottom'), left: padSide('pad-left') };
  if (sides.top + sides.right + sides.bottom + sides.left > 0) f.pad = sides;
  return Object.keys(f).length > 0 ? f : undefined;
}

/** imgix's adjustment and stylize parameters (ranges as imgix documents them); undefined when none has an effect. */
function parseAdjustments(get: (name: string) => string | undefined): Adjustments | undefined {
  const a: Adjustments = {};
  const set = <K extends keyof Adjustments>(key: K, name: string, parse: (v: string) => Adjustments[K] | undefined) => {
    const v = get(name);
    if (v === undefined) return;
    const parsed = parse(v);
    if (parsed !== undefined) a[key] = parsed;
  };
  for (const name of ['bri', 'con', 'exp', 'gam', 'sat', 'vib', 'usm'] as const) set(name, name, (v) => amount(name, v, -100, 100));
  set('high', 'high', (v) => amount('high', v, -100, 0));
  set('shad', 'shad', (v) => amount('shad', v, 0, 100));
  set('hue', 'hue', (v) => (amount('hue', v, 0, 360) ?? 0) % 360 || undefined);
  set('invert', 'invert', (v) => bool('invert', v) || undefined);
  set('sepia', 'sepia', (v) => amount('sepia', v, 0, 100));
  set('px', 'px', (v) => amount('px', v, 0, 100));
  set('htn', 'htn', (v) => amount('htn', v, 0, 100));
  set('monochrome', 'monochrome', (v) => parseColor('monochrome', v));
  set('duotone', 'duotone', (v) => {
    const parts = v.split(',');
    if (parts.length !== 2) throw badParam('duotone', `duotone must be two hex colours (shadows,highlights), got "${v}"`);
    return [parseColor('duotone', parts[0]!), parseColor('duotone', parts[1]!)];
  });
  if (a.duotone) set('duotoneAlpha', 'duotone-alpha', (v) => amount('duotone-alpha', v, 0, 100) ?? 0);
  // usmrad only shapes usm: alone it has no effect and stays out of the key.
  if (a.usm) set('usmrad', 'usmrad', (v) => Math.round(number('usmrad', v, 0, 500) * 10) / 10);
  return Object.keys(a).length > 0 ? a : undefined;
}

const ALIAS_NAMES: ReadonlySet<string> = new Set(Object.values(PARAM_ALIASES).flat());

/**
 * True when the query's transform parameters are all imgix aliases (width, height, f, …): words
 * a page's own query may use, which make an image request only of an image's path.
 */
export function onlyAliasParams(query: URLSearchParams): boolean {
  let any = false;
  for (const name of query.keys()) {
    if (!TRANSFORM_PARAM_NAMES.has(name) || name === 's' || SHAPING_ONLY.has(name)) continue;
    if (!ALIAS_NAMES.has(name)) return false;
    any = true;
  }
  return any;
}

/**
 * Parse the request query. dpr multiplies w and h and is then dropped, so `w=150&dpr=2` and
 * `w=300` share one spec.
 */
export function parseParams(query: URLSearchParams, fonts: Readonly<Record<string, string>> = DEFAULT_FONTS): ParsedParams {
  const present = (name: string) => [name, ...(PARAM_ALIASES[name] ?? [])].find((n) => query.has(n));
  const source = (name: string) => (present(name) ? query : undefined);
  const get = (name: string) => {
    const found = present(name);
    return found === undefined ? undefined : (query.get(found) ?? undefined);
  };
  let hasTransform = false;
  for (const name of TRANSFORM_PARAM_NAMES) if (name !== 's' && !SHAPING_ONLY.has(name) && query.has(name)) hasTransform = true;

  const p: TransformParams = { fit: 'clip', crop: [], auto: { format: false, compress: false }, lossless: false };
  const raw = (name: string, parse: (v: string) => void) => {
    const v = get(name);
    if (v !== undefined) parse(v);
  };

  let dpr = 1;
  raw('dpr', (v) => { dpr = number('dpr', v, 1, 5); });
  raw('w', (v) => { p.w = Math.max(1, Math.round(size('w', v) * dpr)); });
  raw('h', (v) => { p.h = Math.max(1, Math.round(size('h', v) * dpr)); });
  raw('fit', (v) => { p.fit = oneOf('fit', v, Object.fromEntries(FITS.map((f) => [f, f]))); });
  raw('crop', (v) => { p.crop = parseCrop(v); });
  raw('fp-x', (v) => { p.fpX = number('fp-x', v, 0, 1); });
  raw('fp-y', (v) => { p.fpY = number('fp-y', v, 0, 1); });
  raw('ar', (v) => { p.ar = parseAr(v); });
  raw('rect', (v) => { p.rect = parseRect(v); });
  raw('fm', (v) => { p.fm = oneOf('fm', v, FORMATS); });
  raw('q', (v) => { p.q = integer('q', v, 1, 100); });
  const autos = source('auto')?.getAll('auto').flatMap(list) ?? [];
  p.auto = { format: autos.includes('format'), compress: autos.includes('compress') };
  raw('lossless', (v) => { p.lossless = bool('lossless', v); });
  raw('chromasub', (v) => { p.chromasub = oneOf('chromasub', v, { 420: 420, 422: 422, 444: 444 } as const); });
  raw('bg', (v) => { p.bg = parseColor('bg', v); });
  raw('fill-color', (v) => { p.fillColor = parseColor('fill-color', v); });
  // blur and sharp accept decimals but are kept whole so near-equal URLs share a cache entry.
  raw('blur', (v) => { p.blur = Math.round(number('blur', v, 0, 2000)) || undefined; });
  raw('sharp', (v) => { p.sharp = Math.round(number('sharp', v, 0, 100)) || undefined; });
  raw('rot', (v) => { p.rot = integer('rot', v, 0, 359) || undefined; });
  raw('flip', (v) => { p.flip = oneOf('flip', v, FLIPS); });
  raw('or', (v) => { p.or = parseOr(v); });
  raw('trim', (v) => { p.trim = oneOf('trim', v, { auto: 'auto' } as const); });
  raw('palette', (v) => {
    const format = oneOf('palette', v, { json: 'json', css: 'css' } as const);
    const colors = get('colors');
    const prefix = get('prefix')?.trim();
    // The prefix becomes CSS class names: a CSS identifier and nothing else.
    if (prefix !== undefined && !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(prefix)) throw badParam('prefix', `prefix must be a CSS class name (a letter, then letters, digits, - or _), got "${prefix}"`);
    p.palette = { format, colors: colors === undefined ? 6 : integer('colors', colors, 1, 16), prefix: prefix ?? 'image' };
  });
  raw('ch', (v) => {
    const hints = new Set<'dpr' | 'save-data' | 'width'>();
    for (const h of list(v)) hints.add(oneOf('ch', h, { width: 'width', dpr: 'dpr', 'save-data': 'save-data' } as const));
    if (hints.size > 0) p.ch = [...hints].sort();
  });
  const mark = parseMark(get);
  if (mark) p.mark = mark;
  const text = parseText(get, fonts);
  if (text) p.text = text;
  const frame = parseFrame(get);
  if (frame) p.frame = frame;
  const adjust = parseAdjustments(get);
  if (adjust) p.adjust = adjust;

  return { params: p, canonical: canonicalize(p), hasTransform };
}

function markEntries(m: MarkParams | undefined): [string, string | number | undefined][] {
  if (!m) return [];
  return [
    ['mark', m.src], ['mark-w', m.w], ['mark-h', m.h], ['mark-fit', m.fit], ['mark-scale', m.scale],
    ['mark-align', `${m.align.v},${m.align.h}`], ['mark-pad', m.pad], ['mark-alpha', m.alpha],
    ['mark-x', m.x], ['mark-y', m.y], ['mark-tile', m.tile],
  ];
}

function textEntries(t: TextParams | undefined): [string, string | number | undefined][] {
  if (!t) return [];
  // The text itself is keyed in base64url: any character, one form, never mistaken for a separator.
  return [
    ['txt64', Buffer.from(t.text).toString('base64url')], ['txt-font', t.fontName], ['txt-size', t.size],
    ['txt-color', colorHex(t.color)], ['txt-align', `${t.align.v},${t.align.h}`], ['txt-pad', t.pad],
    ['txt-width', t.width], ['txt-fit', t.fit], ['txt-shad', t.shadow || undefined],
    ['txt-line', t.line || undefined], ['txt-line-color', t.line ? colorHex(t.lineColor) : undefined],
  ];
}

const corners = (c: Corners | undefined) => c?.join(',');
const sides = (s: { top: number; right: number; bottom: number; left: number } | undefined) => s && `${s.top},${s.right},${s.bottom},${s.left}`;

function frameEntries(f: FrameParams | undefined): [string, string | number | undefined][] {
  if (!f) return [];
  return [
    ['mask', f.mask], ['corner-radius', corners(f.cornerRadius)], ['mask-bg', f.maskBg && colorHex(f.maskBg)],
    ['border', f.border && `${sides(f.border.sides)},${colorHex(f.border.color)}`],
    ['border-radius', corners(f.border?.radius)], ['border-radius-inner', corners(f.border?.innerRadius)],
    ['pad', sides(f.pad)],
  ];
}

function adjustmentEntries(a: Adjustments | undefined): [string, string | number | undefined][] {
  if (!a) return [];
  return [
    ['bri', a.bri], ['con', a.con], ['exp', a.exp], ['gam', a.gam], ['high', a.high], ['shad', a.shad],
    ['hue', a.hue], ['sat', a.sat], ['vib', a.vib], ['invert', a.invert ? 1 : undefined],
    ['usm', a.usm], ['usmrad', a.usmrad], ['sepia', a.sepia], ['px', a.px], ['htn', a.htn],
    ['monochrome', a.monochrome && colorHex(a.monochrome)],
    ['duotone', a.duotone && `${colorHex(a.duotone[0])},${colorHex(a.duotone[1])}`],
    ['duotone-alpha', a.duotoneAlpha],
  ];
}

/** Sorted `k=v&…` of the normalized spec; absent values and no-op defaults are left out. */
export function canonicalize(p: TransformParams): string {
  const autos = [p.auto.compress && 'compress', p.auto.format && 'format'].filter(Boolean);
  const entries: [string, string | number | undefined][] = [
    ['w', p.w], ['h', p.h], ['fit', p.fit],
    ['crop', p.crop.length ? p.crop.join(',') : undefined],
    ['fp-x', p.fpX], ['fp-y', p.fpY],
    ['ar', p.ar && `${p.ar.w}:${p.ar.h}`],
    ['rect', p.rect && `${p.rect.x},${p.rect.y},${p.rect.w},${p.rect.h}`],
    ['fm', p.fm], ['q', p.q],
    ['auto', autos.length ? autos.join(',') : undefined],
    ['lossless', p.lossless ? 1 : undefined],
    ['chromasub', p.chromasub],
    ['bg', p.bg && colorHex(p.bg)], ['fill-color', p.fillColor && colorHex(p.fillColor)],
    ['blur', p.blur], ['sharp', p.sharp], ['rot', p.rot], ['flip', p.flip], ['or', p.or], ['trim', p.trim],
    ...adjustmentEntries(p.adjust),
    ...markEntries(p.mark),
    ...textEntries(p.text),
    ...frameEntries(p.frame),
    ['ch', p.ch?.join(',')], ['save-data', p.saveData ? 1 : undefined],
    ['palette', p.palette?.format], ['colors', p.palette?.colors],
    ['prefix', p.palette?.format === 'css' ? p.palette.prefix : undefined],
  ];
  return entries
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}
