import type { Config } from '../config/schema.js';
import type { TransformLimits } from '../transform/types.js';

/** The transform limits of the config, as both front ends hand them to the pipeline. */
export function transformLimitsOf(config: Config, avifEffort: number): TransformLimits {
  return {
    maxOutputDimension: config.limits.maxOutputDimension,
    maxSourcePixels: config.limits.maxSourcePixels,
    maxOutputPixels: config.limits.maxOutputPixels,
    timeoutSeconds: config.limits.transformTimeoutSeconds,
    maxFrames: config.limits.maxFrames,
    avifEffort,
  };
}
