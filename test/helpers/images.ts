/** Test images the project makes itself with sharp (nothing downloaded). */
import sharp from 'sharp';

export type Rgb = [number, number, number];

/** Deterministic noise so fixtures (and sizes measured on them) are the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

function rawImage(width: number, height: number, channels: 3 | 4, pixel: (x: number, y: number) => number[], pageHeight?: number) {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = pixel(x, y);
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v[c] ?? 255)));
    }
  }
  return sharp(data, { raw: { width, height, channels, ...(pageHeight ? { pageHeight } : {}) } });
}

/**
 * Photo-like: smooth gradients, noise and a few shapes, none of it symmetric. The default noise
 * (±20 a pixel) is grainier than most photographs: JPEG keeps such grain cheaply, so where a test
 * needs the modern formats to win, as on real photographs, it asks for less.
 */
export async function photoJpeg(opts: { width?: number; height?: number; quality?: number; seed?: number; noise?: number } = {}): Promise<Buffer> {
  const { width = 640, height = 480, quality = 90, seed = 42, noise = 40 } = opts;
  const rand = prng(seed);
  return rawImage(width, height, 3, (x, y) => {
    const u = x / width;
    const v = y / height;
    const n = (rand() - 0.5) * noise;
    let px: Rgb = [40 + 180 * u + n, 60 + 120 * v + 40 * Math.sin(u * 9) + n, 200 - 150 * u * v + n];
    const dx = u - 0.3;
    const dy = v - 0.35;
    if (dx * dx + dy * dy < 0.02) px = [230 + n / 4, 200 + n / 4, 40 + n / 4]; // sun, upper left
    if (u > 0.6 && u < 0.9 && v > 0.55 && v < 0.8) px = [30 + n, 120 + n, 40 + n]; // block, lower right
    if (v > 0.85 && u < 0.5) px = [90 + 30 * Math.sin(x / 3) + n, 60 + n, 30 + n]; // stripes, bottom left
    return px;
  }).jpeg({ quality }).toBuffer();
}

/** RGBA PNG: an opaque orange disc, a half-transparent ring around it, transparent corners. */
export async function alphaPng(opts: { width?: number; height?: number } = {}): Promise<Buffer> {
  const { width = 200, height = 200 } = opts;
  const r = Math.min(width, height) / 2;
  return rawImage(width, height, 4, (x, y) => {
    const d = Math.hypot(x + 0.5 - width / 2, y + 0.5 - height / 2);
    const alpha = d < r * 0.6 ? 255 : d < r * 0.9 ? 128 : 0;
    return [255, 128, 0, alpha];
  }).png().toBuffer();
}

/** Animated GIF: each frame a different solid colour with a square that moves right. */
export async function animatedGif(opts: { frames?: number; width?: number; height?: number } = {}): Promise<Buffer> {
  const { frames = 4, width = 120, height = 80 } = opts;
  const colours: Rgb[] = [[220, 30, 30], [30, 200, 30], [30, 30, 220], [230, 220, 20], [200, 30, 200], [20, 200, 200]];
  const side = Math.round(height / 3);
  return rawImage(width, height * frames, 3, (x, y) => {
    const f = Math.floor(y / height);
    const left = Math.round(((width - side) * f) / Math.max(1, frames - 1));
    const inSquare = x >= left && x < left + side && y % height >= side && y % height < 2 * side;
    return inSquare ? [255, 255, 255] : colours[f % colours.length]!;
  }, height)
    .gif({ delay: Array<number>(frames).fill(100), loop: 0 })
    .toBuffer();
}

/**
 * JPEG whose stored pixels are landscape (default 400×200) with a red block in the stored
 * top-left corner, tagged with the given EXIF orientation.
 */
export async function orientedJpeg(orientation: number, opts: { width?: number; height?: number } = {}): Promise<Buffer> {
  const { width = 400, height = 200 } = opts;
  const mw = Math.round(width / 5);
  const mh = Math.round(height / 4);
  return rawImage(width, height, 3, (x, y) => (x < mw && y < mh ? [255, 0, 0] : [128, 128, 128]))
    .jpeg({ quality: 95 })
    .withMetadata({ orientation })
    .toBuffer();
}

/** A CMYK JPEG (no ICC profile) of a warm orange photo-like gradient. */
export async function cmykJpeg(): Promise<Buffer> {
  return rawImage(200, 150, 3, (x, y) => [230, 120 + (x / 200) * 60, 30 + (y / 150) * 40])
    .toColourspace('cmyk')
    .jpeg({ quality: 95 })
    .toBuffer();
}

/** Four solid quadrants (default 400×200): top-left red, top-right green, bottom-left blue, bottom-right yellow. */
export async function quadrantPng(opts: { width?: number; height?: number } = {}): Promise<Buffer> {
  const { width = 400, height = 200 } = opts;
  const quad: Rgb[] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]];
  return rawImage(width, height, 3, (x, y) => quad[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)]!).png().toBuffer();
}

/** A solid colour stored as Display P3 pixels with the P3 profile embedded (a wide-gamut camera/phone image). */
export async function displayP3Png(srgb: Rgb = [0, 220, 0], opts: { width?: number; height?: number } = {}): Promise<Buffer> {
  const { width = 64, height = 64 } = opts;
  const [r, g, b] = srgb;
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).withIccProfile('p3').png().toBuffer();
}

/** The pixel values a file stores, without any colour-profile conversion. */
export async function storedPixelAt(img: Buffer, x: number, y: number): Promise<Rgb> {
  const px = await sharp(img, { ignoreIcc: true }).extract({ left: x, top: y, width: 1, height: 1 }).removeAlpha().raw().toBuffer();
  return [px[0]!, px[1]!, px[2]!];
}

/** One pixel of any image sharp can read (first frame), as 8-bit sRGB with alpha. */
export async function colorAt(img: Buffer, x: number, y: number): Promise<{ r: number; g: number; b: number; a: number }> {
  const px = await sharp(img)
    .toColourspace('srgb')
    .ensureAlpha()
    .extract({ left: x, top: y, width: 1, height: 1 })
    .raw()
    .toBuffer();
  return { r: px[0]!, g: px[1]!, b: px[2]!, a: px[3]! };
}

/**
 * Animated GIF of fine two-colour diagonal stripes that move: GIF's LZW on two palette entries
 * beats lossy WebP on hard edges (WebP comes out several times larger).
 */
export async function stripesGif(opts: { frames?: number; width?: number; height?: number } = {}): Promise<Buffer> {
  const { frames = 8, width = 120, height = 120 } = opts;
  return rawImage(width, height * frames, 3, (x, y) => {
    const f = Math.floor(y / height);
    return ((x + (y % height) + 2 * f) >> 1) & 1 ? [20, 20, 200] : [235, 235, 235];
  }, height)
    .gif({ delay: Array<number>(frames).fill(80), loop: 0 })
    .toBuffer();
}

/** The animated GIF above (animatedGif) as an animated WebP. */
export async function animatedWebp(opts: { frames?: number; width?: number; height?: number } = {}): Promise<Buffer> {
  return sharp(await animatedGif(opts), { pages: -1 }).webp({ loop: 0 }).toBuffer();
}

/** A flat interface drawing (few colours, axis-aligned blocks, as in a screenshot) as a palette PNG. */
export async function flatUiPng(opts: { width?: number; height?: number } = {}): Promise<Buffer> {
  const { width = 800, height = 480 } = opts;
  const colours: Rgb[] = [[36, 41, 47], [9, 105, 218], [208, 215, 222], [255, 255, 255], [31, 136, 61]];
  const random = prng(11);
  const blocks = Array.from({ length: 60 }, (_, i) => {
    const w = 40 + Math.floor(random() * 20) * 4;
    const h = 8 + Math.floor(random() * 6) * 4;
    return { x: Math.floor((random() * (width - w)) / 4) * 4, y: Math.floor((random() * (height - h)) / 4) * 4, w, h, c: colours[i % colours.length]! };
  });
  return rawImage(width, height, 3, (x, y) => {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i]!;
      if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h) return b.c;
    }
    return [244, 244, 244];
  })
    .png({ palette: true })
    .toBuffer();
}
