import Negotiator from 'negotiator';
import { frameNeedsAlpha } from './frame.js';
import type { ImageInfo, OutputChoice, OutputFormat, TransformParams } from './types.js';

/** The part of an Accept header that decides an image's format: all that enters the cache key. */
export interface AcceptedFormats {
  avif: boolean;
  webp: boolean;
}

export interface FormatPolicy {
  avif: boolean;
  avifMaxDimension: number;
}

/**
 * Reduces Accept to the modern formats it lists by name (q > 0). Wildcards do not count:
 * every browser sends `*\/*`, and only a named type proves the browser decodes it.
 */
export function acceptedFormats(accept: string | undefined, policy: FormatPolicy): AcceptedFormats {
  const listed = new Set(new Negotiator({ headers: { accept: accept ?? '' } }).mediaTypes().map((t) => t.toLowerCase()));
  return { avif: policy.avif && listed.has('image/avif'), webp: listed.has('image/webp') };
}

/** Stable label for the key: the same for every Accept string that leads to the same choice. */
export function acceptTag(accepted: AcceptedFormats): string {
  const tags = [accepted.avif && 'avif', accepted.webp && 'webp'].filter(Boolean);
  return tags.length > 0 ? tags.join('+') : 'legacy';
}

const choice = (format: OutputFormat, extra: Partial<OutputChoice> = {}): OutputChoice => ({
  format,
  progressive: false,
  palette: false,
  animated: false,
  ...extra,
});

/** The source's own family when the browser gets no modern format: alpha forces PNG. */
function sourceFamily(info: ImageInfo, keepModern: boolean): OutputChoice {
  switch (info.format) {
    case 'jpeg':
      return choice('jpeg', { progressive: info.progressive });
    case 'png':
      return choice('png');
    case 'gif':
      return choice('gif', { animated: info.pages > 1 });
    case 'webp':
      if (keepModern) return choice('webp', { animated: info.pages > 1 });
      // Every browser plays an animated GIF: the animation survives a client without WebP.
      if (info.pages > 1) return choice('gif', { animated: true });
      break;
    case 'avif':
      if (keepModern) return choice('avif');
      break;
    default:
      break;
  }
  return info.hasAlpha ? choice('png') : choice('jpeg');
}

/** A mask or a rounded border leaves transparent pixels: a JPEG family becomes PNG (an explicit fm is kept). */
function keepClearPixels(params: TransformParams, family: OutputChoice): OutputChoice {
  return family.format === 'jpeg' && frameNeedsAlpha(params.frame) ? choice('png') : family;
}

function requestedFormat(params: TransformParams, info: ImageInfo): OutputChoice | undefined {
  const animated = info.pages > 1;
  switch (params.fm) {
    case 'jpg':
      return choice('jpeg');
    case 'pjpg':
      return choice('jpeg', { progressive: true });
    case 'png':
      return choice('png');
    case 'png8':
      return choice('png', { palette: true });
    case 'webp':
      return choice('webp', { animated });
    case 'avif':
      return choice('avif');
    case 'gif':
      return choice('gif', { animated });
    default:
      return undefined;
  }
}

/** The longest side the output will have, as far as it can be told before transforming. */
function expectedLongestSide(params: TransformParams, info: ImageInfo): number {
  const requested = Math.max(params.w ?? 0, params.h ?? 0);
  return requested > 0 ? requested : Math.max(info.width, info.height);
}

/**
 * One encoding for this response. `auto=format` wins over `fm` when the browser takes a
 * modern format (fm is then the fallback), as imgix documents. An animation stays animated under
 * `auto=format`: WebP where taken (libvips writes no animated AVIF), else GIF.
 */
export function chooseOutput(
  params: TransformParams,
  info: ImageInfo,
  accepted: AcceptedFormats | undefined,
  policy: FormatPolicy,
): OutputChoice {
  const animated = info.pages > 1 && (info.format === 'gif' || info.format === 'webp');
  if (params.auto.format && accepted) {
    // Animation survives only in WebP (sharp cannot write animated AVIF).
    if (animated) {
      if (accepted.webp) return choice('webp', { animated: true });
    } else if (accepted.avif && expectedLongestSide(params, info) <= policy.avifMaxDimension) {
      return choice('avif');
    } else if (accepted.webp) {
      return choice('webp');
    }
  }
  const chosen = requestedFormat(params, info) ?? keepClearPixels(params, sourceFamily(info, !params.auto.format));
  if (chosen.format === 'jpeg' && params.auto.compress) chosen.progressive = true;
  return chosen;
}

/**
 * The other format `auto=format` considers beside its first choice: `fm` if given, else the
 * source's own family as this client takes it. None when that is the first choice itself, or a
 * still behind an animation (frames are not traded for bytes). AVIF and WebP are not weighed
 * against each other: at one q, AVIF keeps more detail, so its bytes buy a better image.
 */
export function fallbackOutput(params: TransformParams, info: ImageInfo, accepted: AcceptedFormats | undefined, first: OutputChoice): OutputChoice | undefined {
  if (!params.auto.format || !accepted) return undefined;
  const takesOwn = (info.format === 'webp' && accepted.webp) || (info.format === 'avif' && accepted.avif);
  const family = requestedFormat(params, info) ?? keepClearPixels(params, sourceFamily(info, takesOwn));
  if (family.format === 'jpeg' && params.auto.compress) family.progressive = true;
  return family.format === first.format || (first.animated && !family.animated) ? undefined : family;
}
