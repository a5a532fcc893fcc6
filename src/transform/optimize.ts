import { isCleanOriginal } from './clean-original.js';
import { SOURCE_CONTENT_TYPES } from './sniff.js';
import { transform } from './pipeline.js';
import type { EncodePolicy, ImageInfo, OutputChoice, TransformLimits, TransformParams, TransformResult } from './types.js';

export interface Rendered {
  result: TransformResult;
  /** the source's own bytes are served: re-encoding would not have made them smaller */
  original: boolean;
}

/** Output as large as the source, in its format and with nothing visible changed. */
function isPlainReencode(info: ImageInfo, result: TransformResult): boolean {
  return (
    result.format === info.format &&
    result.width === info.width &&
    result.height === info.height &&
    info.orientation === 1 &&
    info.pages === 1
  );
}

/**
 * Transforms a source, and keeps the promise that an optimized image is never larger: when a
 * re-encode in the source's own format and size is not smaller, the source's bytes win — if
 * they carry nothing but the image (clean-original.ts).
 */
export async function renderVariant(
  source: Buffer,
  info: ImageInfo,
  params: TransformParams,
  out: OutputChoice,
  limits: TransformLimits,
  policy: EncodePolicy,
): Promise<Rendered> {
  const result = await transform(source, info, params, out, limits, policy);
  if (isPlainReencode(info, result) && result.body.length >= source.length && isCleanOriginal(info, source)) {
    const { quality: _ignored, ...rest } = result;
    return { result: { ...rest, body: source, contentType: SOURCE_CONTENT_TYPES[info.format] }, original: true };
  }
  return { result, original: false };
}
