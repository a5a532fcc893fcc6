/**
 * Worker-thread side of quality-pool.ts: the per-image encoding (quality search, PNG plan) with
 * its perceptual metric, which is plain JavaScript and would otherwise hold the event loop for
 * hundreds of milliseconds per miss; and the distinct-colour count of the API's log records.
 */
import { encodeRaw } from './auto-encode.js';
export { distinctColours } from './colours.js';
import type { PerImageEncoding, PerImageTask } from './types.js';

/** Structured clone turns Buffers into Uint8Arrays; the encoders want Buffers back. */
const asBuffer = (u8: Uint8Array) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

export default async function run(task: PerImageTask): Promise<PerImageEncoding> {
  return encodeRaw({ ...task, ref: { ...task.ref, data: asBuffer(task.ref.data) } });
}
