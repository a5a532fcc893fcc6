/**
 * Answers about an image's rendered pixels rather than the image itself: imgix's `palette=json`
 * and `palette=css` (its dominant colours) and `fm=blurhash` (a BlurHash placeholder string).
 * Computed on a small copy of the output, as palette extractors and BlurHash encoders do.
 */
import { encode as blurhashEncode } from 'blurhash';
import type { Swatch } from '@vibrant/color';
import { DefaultGenerator } from '@vibrant/generator-default';
import { MMCQ } from '@vibrant/quantizer-mmcq';
import type { Sharp } from 'sharp';

/** RGBA pixels of `img` no larger than `side` on either side. */
async function smallRgba(img: Sharp, side: number, timeoutSeconds: number): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await img
    .resize(side, side, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .timeout({ seconds: timeoutSeconds })
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

interface PaletteColour {
  red: number;
  green: number;
  blue: number;
  hex: string;
}

const colour = (rgb: readonly number[]): PaletteColour => {
  const [r, g, b] = rgb.map((v) => Math.max(0, Math.min(255, Math.round(v)))) as [number, number, number];
  const round = (v: number) => Math.round((v / 255) * 1e4) / 1e4;
  return { red: round(r), green: round(g), blue: round(b), hex: `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}` };
};

/** imgix's names for Vibrant.js's six dominance swatches. */
const DOMINANT_NAMES: Record<string, string> = {
  Vibrant: 'vibrant', DarkVibrant: 'vibrant_dark', LightVibrant: 'vibrant_light',
  Muted: 'muted', DarkMuted: 'muted_dark', LightMuted: 'muted_light',
};

export interface ImagePalette {
  colors: PaletteColour[];
  average_luminance: number;
  dominant_colors: Record<string, PaletteColour>;
}

/**
 * The image's `count` most frequent colours (median cut, Vibrant.js's quantizer), the named
 * dominance set (Vibrant.js's generator) and the mean relative luminance, as imgix answers them.
 */
export async function extractPalette(img: Sharp, count: number, timeoutSeconds: number): Promise<ImagePalette> {
  const { data, width, height } = await smallRgba(img, 128, timeoutSeconds);
  let luminance = 0;
  let opaque = 0;
  for (let i = 0; i < width * height; i++) {
    if (data[i * 4 + 3]! < 125) continue;
    luminance += (0.2126 * data[i * 4]! + 0.7152 * data[i * 4 + 1]! + 0.0722 * data[i * 4 + 2]!) / 255;
    opaque++;
  }
  const bySize = (s: Swatch[]) => [...s].sort((a, b) => b.population - a.population);
  const colors = refine(data, bySize(MMCQ(data, { colorCount: count * 2 })).slice(0, count).map((s) => s.rgb)).map(colour);
  const dominant = await DefaultGenerator(MMCQ(data, { colorCount: 64 }));
  const dominant_colors: Record<string, PaletteColour> = {};
  for (const [name, swatch] of Object.entries(dominant)) if (swatch && DOMINANT_NAMES[name]) dominant_colors[DOMINANT_NAMES[name]] = colour(swatch.rgb);
  return { colors, average_luminance: opaque ? Math.round((luminance / opaque) * 1e4) / 1e4 : 0, dominant_colors };
}

/**
 * The quantizer works on 5 bits a channel; each colour is replaced by the mean of the opaque
 * pixels nearest to it (one k-means step), so a flat #ff0000 comes back as #ff0000.
 */
function refine(data: Buffer, centres: readonly (readonly number[])[]): number[][] {
  const sums = centres.map(() => [0, 0, 0, 0]);
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3]! < 125) continue;
    let best = 0;
    let bestDistance = Infinity;
    centres.forEach((c, k) => {
      const d = (data[i]! - c[0]!) ** 2 + (data[i + 1]! - c[1]!) ** 2 + (data[i + 2]! - c[2]!) ** 2;
      if (d < bestDistance) [best, bestDistance] = [k, d];
    });
    const s = sums[best]!;
    s[0]! += data[i]!;
    s[1]! += data[i + 1]!;
    s[2]! += data[i + 2]!;
    s[3]! += 1;
  }
  return sums.map((s, k) => (s[3] ? [s[0]! / s[3], s[1]! / s[3], s[2]! / s[3]] : [...centres[k]!]));
}

/** imgix's CSS form: a foreground and a background class per colour, then black and white as extremes. */
export function paletteCss(palette: ImagePalette, prefix: string): string {
  const rule = (name: string, hex: string) => `.${prefix}-fg-${name} { color:${hex} !important; }\n.${prefix}-bg-${name} { background-color:${hex} !important; }\n`;
  const extremes = ['#000000', '#ffffff'];
  return palette.colors.map((c, i) => rule(String(i + 1), c.hex)).join('') + extremes.map((hex, i) => rule(`ex-${i + 1}`, hex)).join('');
}

/** A BlurHash of the image: 4×3 components (3×4 when portrait) on a copy at most 64 px wide. */
export async function blurhashOf(img: Sharp, timeoutSeconds: number): Promise<string> {
  const { data, width, height } = await smallRgba(img, 64, timeoutSeconds);
  const [x, y] = height > width ? [3, 4] : [4, 3];
  return blurhashEncode(new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width, height, x, y);
}
