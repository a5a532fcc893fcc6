/**
 * imgix's text parameters (`txt*`): a line or block of text drawn on the image. The text is laid
 * out by Pango through sharp's text input, with every character of the URL's text escaped
 * (`escapeMarkup`), so no markup from a URL reaches the renderer; Pango rather than SVG because
 * librsvg's SVG text neither wraps nor measures, and `txt-width` and `txt-fit` need both.
 * Outline (`txt-line`) and shadow (`txt-shad`) are made from the text's own alpha.
 */
import sharp, { type OverlayOptions, type Sharp } from 'sharp';
import { clipOverlay } from './overlay.js';
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

/** The font table a config gives (names matched without case or spaces around commas), else the defaults. */
export function fontTable(configured: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  if (!configured) return DEFAULT_FONTS;
  return Object.fromEntries(Object.entries(configured).map(([name, family]) => [fontKey(name), family]));
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

/** A solid `colour` image whose alpha is `alpha` × the colour's own alpha. */
function tinted(alpha: Buffer, width: number, height: number, colour: Color): Buffer {
  const out = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    out[i * 4] = colour.r;
    out[i * 4 + 1] = colour.g;
    out[i * 4 + 2] = colour.b;
    out[i * 4 + 3] = Math.round(alpha[i]! * colour.alpha);
  }
  return out;
}

/**
 * Draws the text on what `img` has made so far (every frame) and answers a new pipeline. The
 * block is `txt-pad` from the aligned edges; `txt-fit=max` shrinks the size until the block fits.
 */
export async function applyText(img: Sharp, t: TextParams, frames: number, timeoutSeconds: number): Promise<Sharp> {
  const { data, info } = await img.toColourspace('srgb').ensureAlpha().raw().timeout({ seconds: timeoutSeconds }).toBuffer({ resolveWithObject: true });
  const frameHeight = info.height / frames;
  const room = { width: Math.max(1, info.width - 2 * t.pad), height: Math.max(1, frameHeight - 2 * t.pad) };
  const wrap = Math.min(room.width, t.width ?? room.width);
  let size = t.size;
  let text = await layout(t, size, wrap);
  // Shrink to fit (about 10 % a step, at most a dozen layouts), never below 6 px.
  for (let i = 0; t.fit === 'max' && i < 12 && size > 6 && (text.width > room.width || text.height > room.height); i++) {
    size = Math.max(6, Math.floor(size * 0.9));
    text = await layout(t, size, wrap);
  }
  // Room around the glyphs for the outline and the shadow.
  const margin = Math.ceil(t.line + 3 * t.shadow + t.shadow);
  const w = text.width + 2 * margin;
  const h = text.height + 2 * margin;
  const glyphs = await sharp(text.data, { raw: { width: text.width, height: text.height, channels: 4 } })
    .extend({ top: margin, bottom: margin, left: margin, right: margin, background: { r: 0, g: 0, b: 0, alpha: 0 } })
    .extractChannel(3)
    .raw()
    .toBuffer();
  const layers: Buffer[] = [];
  if (t.shadow > 0) {
    const blurred = await sharp(glyphs, { raw: { width: w, height: h, channels: 1 } }).blur(Math.max(0.3, t.shadow)).extractChannel(0).raw().toBuffer();
    const shifted = Buffer.alloc(w * h);
    const d = Math.round(t.shadow);
    for (let y = d; y < h; y++) blurred.copy(shifted, y * w + d, (y - d) * w, (y - d) * w + w - d);
    layers.push(tinted(shifted, w, h, { r: 0, g: 0, b: 0, alpha: 0.6 }));
  }
  if (t.line > 0) {
    layers.push(tinted(grow(glyphs, w, h, t.line), w, h, t.lineColor));
  }
  layers.push(tinted(glyphs, w, h, t.color));
  const left = t.align.h === 'left' ? t.pad : t.align.h === 'right' ? info.width - t.pad - text.width : Math.round((info.width - text.width) / 2);
  const top = t.align.v === 'top' ? t.pad : t.align.v === 'bottom' ? frameHeight - t.pad - text.height : Math.round((frameHeight - text.height) / 2);
  const overlays: OverlayOptions[] = [];
  for (let f = 0; f < frames; f++) {
    for (const layer of layers) {
      overlays.push({ input: layer, raw: { width: w, height: h, channels: 4 }, left: left - margin, top: f * frameHeight + top - margin });
    }
  }
  const base = sharp(data, { raw: { width: info.width, height: info.height, channels: 4, ...(frames > 1 ? { pageHeight: frameHeight } : {}) } });
  // sharp places overlays inside the image only: let the composite clip them by materializing.
  const { data: out } = await base.composite(overlays.map((o) => clipOverlay(o, info.width, info.height))).raw().toBuffer({ resolveWithObject: true });
  return sharp(out, { raw: { width: info.width, height: info.height, channels: 4, ...(frames > 1 ? { pageHeight: frameHeight } : {}) } });
}

/**
 * Coverage grown by `radius` pixels (a max filter, square and cross kernels in turn: an octagon
 * close to a disc), keeping anti-aliased edges, for the outline.
 */
function grow(alpha: Buffer, width: number, height: number, radius: number): Buffer {
  let from = Buffer.from(alpha);
  let to = Buffer.alloc(alpha.length);
  for (let step = 0; step < radius; step++) {
    const square = step % 2 === 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let m = 0;
        for (let dy = -1; dy <= 1; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= height) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= width || (!square && dx !== 0 && dy !== 0)) continue;
            const v = from[yy * width + xx]!;
            if (v > m) m = v;
          }
        }
        to[y * width + x] = m;
      }
    }
    [from, to] = [to, from];
  }
  return from;
}
