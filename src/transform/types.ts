/** Shared types of the transform stage (params → negotiate → identify → pipeline). */

export type Fit = 'clip' | 'crop' | 'fill' | 'fillmax' | 'max' | 'min' | 'scale';
export type RequestedFormat = 'jpg' | 'pjpg' | 'png' | 'png8' | 'webp' | 'avif' | 'gif' | 'json' | 'blurhash';
/** Formats a source can be in, as told by its magic bytes. */
export type SourceFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'avif' | 'heif' | 'tiff' | 'svg';
/** Encoders the pipeline drives. */
export type OutputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif';

/** RGBA, each channel 0..255 (alpha 0..1 as sharp expects). */
export interface Color {
  r: number;
  g: number;
  b: number;
  alpha: number;
}

/**
 * Validated imgix parameters. Sizes are already multiplied by dpr (dpr is folded in and
 * not kept), so two URLs that ask for the same pixels share one spec and one cache entry.
 */
export interface TransformParams {
  w?: number;
  h?: number;
  fit: Fit;
  /** crop modes, e.g. ['top','left'], ['entropy'], ['edges'], ['focalpoint'] */
  crop: string[];
  fpX?: number;
  fpY?: number;
  ar?: { w: number; h: number };
  rect?: { x: number; y: number; w: number; h: number };
  fm?: RequestedFormat;
  q?: number;
  auto: { format: boolean; compress: boolean };
  lossless: boolean;
  chromasub?: 420 | 422 | 444;
  bg?: Color;
  fillColor?: Color;
  blur?: number;
  sharp?: number;
  rot?: number;
  flip?: 'h' | 'v' | 'hv';
  /** EXIF-style orientation override (1..8) */
  or?: number;
  trim?: 'auto';
  /** imgix adjustments and stylize (adjust.ts); absent when none is asked */
  adjust?: Adjustments;
  /** ch=: the client hints that may change this output (http/client-hints.ts folds them in) */
  ch?: ('dpr' | 'save-data' | 'width')[];
  /** Save-Data: on, asked by ch=save-data: quality lowered as for a slow connection */
  saveData?: boolean;
  /** mark* (watermark.ts); absent without mark */
  mark?: MarkParams;
  /** the watermark's bytes, fetched by the miss path before the transform (never part of the key) */
  markImage?: Buffer;
  /** txt* (text.ts); absent without txt */
  text?: TextParams;
  /** mask, border, padding (frame.ts); absent when none is asked */
  frame?: FrameParams;
  /** palette=json|css: the rendered image's dominant colours instead of the image */
  palette?: { format: 'json' | 'css'; colors: number; prefix: string };
}

/** imgix's watermark parameters. */
export interface MarkParams {
  /** a path on the site's origin, or an absolute URL on it */
  src: string;
  /** pixels, or (0..1] a fraction of the image */
  w?: number;
  h?: number;
  fit: 'clip' | 'crop' | 'fill' | 'max' | 'scale';
  /** percent of the image's width */
  scale?: number;
  align: { v: 'top' | 'middle' | 'bottom'; h: 'left' | 'center' | 'right' };
  pad: number;
  /** 0..100 */
  alpha: number;
  x?: number;
  y?: number;
  tile?: 'grid';
}

/** imgix's text parameters, resolved (the font is a Pango family from the configured list). */
export interface TextParams {
  text: string;
  /** the imgix name asked for, as keyed */
  fontName: string;
  /** the Pango family it stands for */
  font: string;
  /** pixels */
  size: number;
  color: Color;
  align: { v: 'top' | 'middle' | 'bottom'; h: 'left' | 'center' | 'right' };
  /** pixels from the aligned edges */
  pad: number;
  /** wrap width, pixels */
  width?: number;
  fit?: 'max';
  /** shadow strength 0–10 (blur sigma and offset, pixels) */
  shadow: number;
  /** outline width, pixels */
  line: number;
  lineColor: Color;
}

/** Radii of the four corners, clockwise from top-left, in pixels. */
export type Corners = [number, number, number, number];

/** imgix's mask, border and padding parameters. */
export interface FrameParams {
  mask?: 'ellipse' | 'corners';
  /** mask=corners radii (default: 20 % of the shorter side) */
  cornerRadius?: Corners;
  /** what the masked-out area becomes (default transparent) */
  maskBg?: Color;
  border?: { sides: { top: number; right: number; bottom: number; left: number }; color: Color; radius?: Corners; innerRadius?: Corners };
  pad?: { top: number; right: number; bottom: number; left: number };
}

/** imgix's adjustment and stylize parameters, in imgix's own ranges. */
export interface Adjustments {
  /** -100..100 */
  bri?: number;
  con?: number;
  exp?: number;
  gam?: number;
  /** -100..0 */
  high?: number;
  /** 0..100 */
  shad?: number;
  /** degrees, 1..359 */
  hue?: number;
  /** -100..100 */
  sat?: number;
  vib?: number;
  invert?: boolean;
  /** -100..100, with usmrad (radius, default 2.5) */
  usm?: number;
  usmrad?: number;
  monochrome?: Color;
  /** shadows colour, highlights colour */
  duotone?: [Color, Color];
  /** 0..100, default 100 */
  duotoneAlpha?: number;
  /** 0..100 */
  sepia?: number;
  /** pixel block size, 1..100 */
  px?: number;
  /** halftone, 1..100 */
  htn?: number;
}

export interface ParsedParams {
  params: TransformParams;
  /** Sorted `k=v&…` of the normalized spec (defaults filled, dpr folded); enters the cache key. */
  canonical: string;
  /** True when any recognized transform parameter was given (after site defaults). */
  hasTransform: boolean;
}

/** What identify() tells about a source without decoding its pixels. */
export interface ImageInfo {
  format: SourceFormat;
  width: number;
  height: number;
  /** frames; 1 for still images */
  pages: number;
  hasAlpha: boolean;
  /** EXIF orientation 1..8 (1 when absent) */
  orientation: number;
  hasProfile: boolean;
  /** libvips interpretation, e.g. 'srgb', 'cmyk', 'b-w' */
  space: string;
  progressive: boolean;
  bytes: number;
  /** EXIF IFD0 Copyright and Artist, kept in outputs where a site asks */
  copyright?: string;
  artist?: string;
  /** EXIF dates (IFD0 DateTime, the Exif IFD's DateTimeOriginal…) and geotag (the GPS IFD), kept where the API is asked */
  dates?: ExifFields;
  geotag?: ExifFields;
  /** the source carries an EXIF block (unknown where only libvips read it) */
  hasExif?: boolean;
}

/** EXIF fields by IFD as sharp's withExif takes them: IFD0 the image's, IFD2 the Exif IFD, IFD3 GPS. */
export interface ExifFields {
  IFD0?: Record<string, string>;
  IFD2?: Record<string, string>;
  IFD3?: Record<string, string>;
}

/** The one encoding chosen for a response. */
export interface OutputChoice {
  format: OutputFormat;
  progressive: boolean;
  /** png8: palette PNG */
  palette: boolean;
  /** keep all frames (animated GIF/WebP source and an output format that animates) */
  animated: boolean;
}

export interface TransformLimits {
  /** longest side of any output, pixels */
  maxOutputDimension: number;
  /** width × height of any output */
  maxOutputPixels: number;
  /** libvips gives up on one encode after this long */
  timeoutSeconds: number;
  /** animated sources keep at most this many frames */
  maxFrames: number;
  /** width × height × frames a source may have */
  maxSourcePixels: number;
  avifEffort: number;
}

/** 8-bit interleaved pixels, 3 (RGB) or 4 (RGBA) channels. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

/** How hard auto=compress may compress: the perceptual target it searches for (see quality.ts). */
export type QualityTarget = 'high' | 'medium' | 'low';

/** A site's encoding choices. */
export interface EncodePolicy {
  qualityTarget: QualityTarget;
  /** keep the source's EXIF copyright (and artist) in the output */
  keepCopyright: boolean;
  /** keep the source's colour profile instead of converting to sRGB */
  keepIccProfile: boolean;
  /** keep the source's EXIF dates (the optimization API's preserve_meta "date") */
  keepDate?: boolean;
  /** keep the source's GPS fields (preserve_meta "geotag") */
  keepGeotag?: boolean;
}

export interface TransformResult {
  body: Buffer;
  contentType: string;
  format: OutputFormat;
  width: number;
  height: number;
  /** encoder quality used, when the format has one */
  quality?: number;
}

/** How an output is encoded per image, on a quality worker (auto-encode.ts, quality-pool.ts). */
export type PerImageMode = 'search' | 'png';

/** The work a quality worker is handed. */
export interface PerImageTask {
  ref: RawImage;
  mode: PerImageMode;
  p: TransformParams;
  out: OutputChoice;
  limits: TransformLimits;
  policy: EncodePolicy;
  info: ImageInfo;
}

/** What a quality worker answers. */
export interface PerImageEncoding {
  body: Buffer;
  quality?: number;
  width: number;
  height: number;
}
