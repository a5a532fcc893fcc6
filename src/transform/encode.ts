/** Encoder settings per output format. */
import type { Sharp } from 'sharp';
import type { OutputChoice, OutputFormat, TransformParams } from './types.js';

export const CONTENT_TYPES: Readonly<Record<OutputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
};

/** Formats that can carry transparency (GIF as a 1-bit mask). */
export function hasAlphaChannel(format: OutputFormat): boolean {
  return format !== 'jpeg';
}

/** q when given; else imgix's defaults: 45 with auto=compress (or Save-Data), 75 otherwise. */
export function defaultQuality(p: TransformParams): number {
  return p.q ?? (p.auto.compress || p.saveData ? 45 : 75);
}

/** An animation's frame delays (ms) and loop count, carried over pipelines that lose them. */
export interface AnimationTiming {
  delay?: number[];
  loop?: number;
}

/** Sets the encoder on `img`; returns the quality it uses, when the format has one. */
export function applyEncoder(img: Sharp, out: OutputChoice, p: TransformParams, avifEffort: number, timing: AnimationTiming = {}): number | undefined {
  const quality = defaultQuality(p);
  switch (out.format) {
    case 'jpeg':
      // sharp cannot write 4:2:2, so chromasub=422 keeps full chroma (4:4:4) rather than losing more.
      img.jpeg({
        quality,
        chromaSubsampling: p.chromasub === 444 || p.chromasub === 422 ? '4:4:4' : '4:2:0',
        // mozjpeg: true, spelled out because that preset also forces progressive scans.
        trellisQuantisation: true,
        overshootDeringing: true,
        quantisationTable: 3,
        optimiseScans: out.progressive,
        progressive: out.progressive,
      });
      return quality;
    case 'png':
      img.png({ compressionLevel: 9, palette: out.palette, ...(out.palette ? { quality } : {}) });
      return out.palette ? quality : undefined;
    case 'webp':
      // alpha edges show compression early; keep them at least at 80. Lossy WebP is 4:2:0 only:
      // full chroma asks for libwebp's sharp RGB→YUV conversion, which keeps saturated edges.
      img.webp({ quality, lossless: p.lossless, alphaQuality: Math.max(quality, 80), effort: 4, smartSubsample: p.chromasub === 444 || p.chromasub === 422, ...timing });
      return p.lossless ? undefined : quality;
    case 'avif':
      img.avif({
        quality,
        lossless: p.lossless,
        effort: avifEffort,
        chromaSubsampling: p.chromasub === 444 || p.lossless ? '4:4:4' : '4:2:0',
      });
      return p.lossless ? undefined : quality;
    case 'gif':
      img.gif({ ...timing });
      return undefined;
  }
}
