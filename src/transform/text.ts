/**
 * imgix's text parameters (`txt*`): a line or block of text drawn on the image. The text is laid
 * out by Pango through sharp's text input, with every character of the URL's text escaped
 * (`escapeMarkup`), so no markup from a URL reaches the renderer; Pango rather than SVG because
 * librsvg's SVG text neither wraps nor measures, and `txt-width` and `txt-fit` need both.
 * Outline (`txt-line`) and shadow (`txt-shad`) are made from the text's own alpha.
 */
import sharp, { type Sharp } from 'sharp';
import { drawOnEveryFrame, toRawFrames } from './raw-frames.js';
import type { Color, TextParams } from './types.js';

/** Fonts by their imgix-style name (lower case), as Pango font families; the config may replace them. */
export const DEFAULT_FONTS: Readonly<Record<string, string>> = {
  'sans-serif': 'DejaVu Sans',
  'sans-serif,bold': 'DejaVu Sans Bold',
  serif: 'DejaVu Serif',
  'serif,bold': 'DejaVu Serif Bold',
  monospace: 'DejaVu Sans Mono',
  'monospace,bold': 'DejaVu Sans Mono Bold',
  // imgix's common names, on the metric-compatible Liberation fonts
  helvetica: 'Liberation Sans',
  'helvetica,bold': 'Liberation Sans Bold',
  arial: 'Liberation Sans',
  'arial,bold': 'Liberation Sans Bold',
  'times new roman': 'Liberation Serif',
  'times new roman,bold': 'Liberation Serif Bold',
  'courier new': 'Liberation Mono',
};
export const DEFAULT_FONT = 'sans-serif';

/**
 * The defaults with what a config adds or replaces (names matched without case or spaces around
 * commas), so `txt` without `txt-font` always has its `sans-serif`.
 */
export function fontTable(configured: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  if (!configured) return DEFAULT_FONTS;
  return { ...DEFAULT_FONTS, ...Object.fromEntries(Object.entries(configured).map(([name, family]) => [fontKey(name), family])) };
}

export const fontKey = (name: string) => name.trim().toLowerCase().replace(/\s*,\s*/g, ',');

/** Text as Pango markup that means only itself. */
export function escapeMarkup(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** White text on transparent, wrapped at `width`: its alpha is the glyph coverage. */
async function layout(t: TextParams, size: number, width: number): Promise<{ data: Buffer; width: number; height: number }> {
  const align = t.align.h === 'center' ? 'centre' : t.align.h;
  const { data, info } = await sharp({
    text: { text: `<span foreground="#ffffff">${escapeMarkup(t.text)}</span>`, font: `${t.font} ${size}px`, width: Math.max(1, Math.floor(width)), rgba: true, align, wrap: 'word-char', dpi: 72 },
  })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/**
 * A solid `colour` layer whose alpha is the 1-channel `alpha` × the colour's own alpha, made by
 * libvips (off the event loop), as raw RGBA.
 */
async function tinted(alpha: Sharp, width: number, height: number, colour: Color): Promise<Buffer> {
  const a = await alpha.linear(colour.alpha, 0).extractChannel(0).raw().toBuffer();
  return sharp({ create: { width, height, channels: 3, background: { r: colour.r, g: colour.g, b: colour.b } } })
    .joinChannel(a, { raw: { width, height, channels: 1 } })
    .raw()
    .toBuffer();
}

export async function applyText(img: Sharp, t: TextParams, frames: number, timeoutSeconds: number): Promise<Sharp> {
  const raw = await toRawFrames(img, frames, timeoutSeconds);
  const { width, frameHeight } = raw;
  const room = { width: Math.max(1, width - 2 * t.pad), height: Math.max(1, frameHeight - 2 * t.pad) };
  const wrap = Math.min(room.width, t.width ?? room.width);
  // Bounded by the image: glyphs no taller than it, and (at about 0.72 size² a character) text of
  // no more than four times its area, so a URL cannot ask for a gigapixel layout.
  const chars = [...t.text].length;
  const fitsArea = Math.floor(Math.sqrt((4 * width * frameHeight) / (0.72 * chars)));
  let size = Math.max(1, Math.min(t.size, frameHeight, fitsArea));
  let text = await layout(t, size, wrap);
  // Shrink to fit (about 10 % a step, at most a dozen layouts, down to about a quarter), never below 6 px.
  for (let i = 0; t.fit === 'max' && i < 12 && size > 6 && (text.width > room.width || text.height > room.height); i++) {
    size = Math.max(6, Math.floor(size * 0.9));
    text = await layout(t, size, wrap);
  }
  // Room around the glyphs for the outline and the shadow; of a block taller than the image, only
  // the rows that can show (by the vertical alignment) are kept.
  const margin = Math.ceil(t.line + 4 * t.shadow);
  const shown = Math.min(text.height, frameHeight + 2 * margin);
  const skip = t.align.v === 'top' ? 0 : t.align.v === 'bottom' ? text.height - shown : Math.floor((text.height - shown) / 2);
  const w = text.width + 2 * margin;
  const h = shown + 2 * margin;
  const glyphs = await sharp(text.data, { raw: { width: text.width, height: text.height, channels: 4 } })
    .extract({ left: 0, top: skip, width: text.width, height: shown })
    .extend({ top: margin, bottom: margin, left: margin, right: margin, background: { r: 0, g: 0, b: 0, alpha: 0 } })
    .extractChannel(3)
    .raw()
    .toBuffer();
  const alpha = () => sharp(glyphs, { raw: { width: w, height: h, channels: 1 } });
  const layers: Buffer[] = [];
  if (t.shadow > 0) {
    // Blurred, then moved down and right by the shadow's strength (cut back to the layer's size).
    const d = Math.round(t.shadow);
    const blurred = await alpha().blur(Math.max(0.3, t.shadow)).extractChannel(0).raw().toBuffer();
    // (sharp extracts before it extends, whatever the order of the calls)
    const shifted = sharp(blurred, { raw: { width: w, height: h, channels: 1 } })
      .extract({ left: 0, top: 0, width: w - d, height: h - d })
      .extend({ top: d, left: d, bottom: 0, right: 0, background: '#000000' })
      .extractChannel(0);
    layers.push(await tinted(sharp(await shifted.raw().toBuffer(), { raw: { width: w, height: h, channels: 1 } }), w, h, { r: 0, g: 0, b: 0, alpha: 0.6 }));
  }
  // sharp's erode grows the light (here: covered) pixels by a square of that radius.
  if (t.line > 0) layers.push(await tinted(sharp(await alpha().erode(t.line).extractChannel(0).raw().toBuffer(), { raw: { width: w, height: h, channels: 1 } }), w, h, t.lineColor));
  layers.push(await tinted(alpha(), w, h, t.color));
  const blockHeight = Math.min(text.height, shown);
  const left = t.align.h === 'left' ? t.pad : t.align.h === 'right' ? width - t.pad - text.width : Math.round((width - text.width) / 2);
  const top = t.align.v === 'top' ? t.pad : t.align.v === 'bottom' ? frameHeight - t.pad - blockHeight : Math.round((frameHeight - blockHeight) / 2);
  return drawOnEveryFrame(raw, layers.map((layer) => ({ input: layer, raw: { width: w, height: h, channels: 4 }, left: left - margin, top: top - margin })));
}
