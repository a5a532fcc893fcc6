/**
 * Pure size and crop-window maths for the pipeline (no sharp here, so it is cheap to test).
 * All sizes are in pixels of the source after EXIF orientation (and trim, when asked).
 */
import { badParam } from '../errors.js';
import type { TransformParams } from './types.js';

export interface Size {
  width: number;
  height: number;
}

export interface Region extends Size {
  left: number;
  top: number;
}

/** Where a cover crop keeps its window: a sharp gravity name, or a content strategy. */
export type CropPosition =
  | 'centre' | 'north' | 'south' | 'east' | 'west' | 'northeast' | 'northwest' | 'southeast' | 'southwest'
  | 'entropy' | 'attention';

export interface GeometryPlan {
  /** part of the source kept before resizing (rect, or a focal-point window) */
  extract?: Region;
  /** size the kept part is scaled to */
  resize?: Size;
  /** set when `resize` is a cover crop: scale to cover, then keep this part */
  position?: CropPosition;
  /** fill/fillmax: padding around the resized image up to the requested canvas */
  pad?: { top: number; bottom: number; left: number; right: number };
}

const px = (v: number) => Math.max(1, Math.round(v));

/** Mirror and rotation that display EXIF orientation 1..8 upright, in sharp's order (mirror first). */
export function orientationOps(orientation: number): { flip: boolean; flop: boolean; angle: number } {
  switch (orientation) {
    case 2: return { flip: true, flop: false, angle: 180 }; // = mirror left-right
    case 3: return { flip: false, flop: false, angle: 180 };
    case 4: return { flip: false, flop: true, angle: 180 }; // = mirror top-bottom
    case 5: return { flip: false, flop: true, angle: 270 }; // transpose
    case 6: return { flip: false, flop: false, angle: 90 };
    case 7: return { flip: false, flop: true, angle: 90 }; // transverse
    case 8: return { flip: false, flop: false, angle: 270 };
    default: return { flip: false, flop: false, angle: 0 };
  }
}

export function orientedSize(size: Size, orientation: number): Size {
  return orientation >= 5 && orientation <= 8 ? { width: size.height, height: size.width } : size;
}

/**
 * imgix applies `rot` (clockwise) and then `flip`; sharp mirrors first and rotates after, and
 * a single mirror before a rotation equals the opposite rotation before that mirror.
 */
export function rotateFlipOps(rot = 0, flip?: 'h' | 'v' | 'hv'): { flip: boolean; flop: boolean; angle: number } {
  const single = flip === 'h' || flip === 'v';
  return {
    flip: flip === 'v' || flip === 'hv',
    flop: flip === 'h' || flip === 'hv',
    angle: single ? (360 - rot) % 360 : rot,
  };
}

/** `rect` clamped to the image; a rect that starts outside the image is a bad parameter. */
export function clampRect(src: Size, rect: TransformParams['rect']): Region {
  if (!rect) return { left: 0, top: 0, ...src };
  if (rect.x >= src.width || rect.y >= src.height) {
    throw badParam('rect', `rect starts outside the ${src.width}x${src.height} image`);
  }
  return {
    left: rect.x,
    top: rect.y,
    width: Math.min(rect.w, src.width - rect.x),
    height: Math.min(rect.h, src.height - rect.y),
  };
}

/** The largest box of the given aspect (width/height) inside `size`. */
export function largestBox(size: Size, aspect: number): Size {
  return size.width / size.height > aspect
    ? { width: px(size.height * aspect), height: size.height }
    : { width: size.width, height: px(size.width / aspect) };
}

function cropPosition(crop: string[]): CropPosition {
  if (crop.includes('entropy')) return 'entropy';
  if (crop.includes('edges')) return 'attention';
  const has = (m: string) => crop.includes(m);
  // top and bottom together (or left and right) cancel out to the centre on that axis.
  const v = has('top') && !has('bottom') ? 'north' : has('bottom') && !has('top') ? 'south' : '';
  const h = has('left') && !has('right') ? 'west' : has('right') && !has('left') ? 'east' : '';
  return ((v + h) || 'centre') as CropPosition;
}

/** Window of `box`'s aspect, as large as fits in `region`, centred on the focal point. */
function focalWindow(region: Region, box: Size, fpX = 0.5, fpY = 0.5): Region {
  const win = largestBox(region, box.width / box.height);
  const clamp = (v: number, max: number) => Math.min(Math.max(0, Math.round(v)), max);
  return {
    left: region.left + clamp(fpX * region.width - win.width / 2, region.width - win.width),
    top: region.top + clamp(fpY * region.height - win.height / 2, region.height - win.height),
    ...win,
  };
}

/**
 * Plan rect → resize per imgix fit → output cap for a source of size `src`.
 * Only one of w/h: the other follows the aspect ratio (for crop/min with `ar`, follows `ar`).
 */
export function planGeometry(src: Size, p: TransformParams, maxDimension: number, maxPixels = Infinity): GeometryPlan {
  const region = clampRect(src, p.rect);
  const cropLike = p.fit === 'crop' || p.fit === 'min';
  let w = p.w;
  let h = p.h;
  if (cropLike && p.ar) {
    const aspect = p.ar.w / p.ar.h;
    if (w !== undefined && h === undefined) h = px(w / aspect);
    else if (h !== undefined && w === undefined) w = px(h * aspect);
    else if (w === undefined && h === undefined) ({ width: w, height: h } = largestBox(region, aspect));
  }

  let resize: Size = { width: region.width, height: region.height };
  let canvas: Size | undefined;
  let position: CropPosition | undefined;
  let extract: Region | undefined = p.rect ? region : undefined;
  const noUpscale = p.fit === 'max' || p.fit === 'fillmax' || p.fit === 'min';

  if (w !== undefined && h !== undefined && (cropLike || p.fit === 'scale')) {
    let box = { width: w, height: h };
    if (p.fit === 'min') {
      // Never larger than the source: shrink the box, keeping its aspect, until it fits.
      const k = Math.min(1, region.width / w, region.height / h);
      box = { width: px(w * k), height: px(h * k) };
    }
    resize = box;
    if (p.fit !== 'scale') {
      if (p.crop.includes('focalpoint')) extract = focalWindow(region, box, p.fpX, p.fpY);
      else position = cropPosition(p.crop);
    }
  } else if (w !== undefined || h !== undefined) {
    // Fit inside the box (clip/max/fill/fillmax), or scale by the one given side.
    const scales = [w !== undefined ? w / region.width : Infinity, h !== undefined ? h / region.height : Infinity];
    const fitScale = Math.min(...scales);
    const s = noUpscale ? Math.min(fitScale, 1) : fitScale;
    resize = { width: px(region.width * s), height: px(region.height * s) };
    if (p.fit === 'fill' || p.fit === 'fillmax') {
      canvas = { width: w ?? px(region.width * fitScale), height: h ?? px(region.height * fitScale) };
    }
  }

  // Cap every side of the output at maxDimension and its area at maxPixels, proportionally,
  // counting the growth of `rot`: a tiny source must not buy a huge encode.
  const outer = canvas ?? resize;
  const rad = ((p.rot ?? 0) * Math.PI) / 180;
  const [cos, sin] = [Math.abs(Math.cos(rad)), Math.abs(Math.sin(rad))];
  const longest = Math.max(outer.width * cos + outer.height * sin, outer.width * sin + outer.height * cos);
  const area = outer.width * outer.height;
  const f = Math.min(1, maxDimension / Math.ceil(longest - 1e-9), Math.sqrt(maxPixels / area));
  if (f < 1) {
    resize = { width: px(resize.width * f), height: px(resize.height * f) };
    if (canvas) canvas = { width: px(canvas.width * f), height: px(canvas.height * f) };
  }

  const kept = extract ?? region;
  const plan: GeometryPlan = {};
  if (extract) plan.extract = extract;
  if (resize.width !== kept.width || resize.height !== kept.height) {
    plan.resize = resize;
    if (position) plan.position = position;
  }
  if (canvas && (canvas.width > resize.width || canvas.height > resize.height)) {
    const left = Math.floor((canvas.width - resize.width) / 2);
    const top = Math.floor((canvas.height - resize.height) / 2);
    plan.pad = { left, top, right: canvas.width - resize.width - left, bottom: canvas.height - resize.height - top };
  }
  return plan;
}
