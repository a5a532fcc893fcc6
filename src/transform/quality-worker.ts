/**
 * Worker-thread side of quality-pool.ts: the per-image encoding (quality search, PNG plan) with
 * its perceptual metric, which is plain JavaScript and would otherwise hold the event loop for
 * hundreds of milliseconds per miss; the distinct-colour count of the API's log records; and the
 * per-pixel passes of imgix's adjustments and frames.
 */
import { adjustPixels } from './adjust.js';
import { encodeRaw } from './auto-encode.js';
import { framePixels } from './frame.js';
export { distinctColours } from './colours.js';
import type { PerImageEncoding, PerImageTask } from './types.js';

/** Structured clone turns Buffers into Uint8Arrays; the encoders want Buffers back. */
const asBuffer = (u8: Uint8Array) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

export default async function run(task: PerImageTask): Promise<PerImageEncoding> {
  return encodeRaw({ ...task, ref: { ...task.ref, data: asBuffer(task.ref.data) } });
}

/** adjust.ts's pixel pass, answering the pixels it changed. */
export function adjustPixelsTask(task: Parameters<typeof adjustPixels>[0]): Uint8Array {
  const data = asBuffer(task.data);
  adjustPixels({ ...task, data });
  return data;
}

/** frame.ts's mask, border and padding of every frame. */
export function framePixelsTask(task: Parameters<typeof framePixels>[0]): ReturnType<typeof framePixels> {
  return framePixels({ ...task, data: asBuffer(task.data) });
}
