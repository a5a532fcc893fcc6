import { EdgeError } from '../errors.js';

export function tooLarge(limit: number): EdgeError {
  return new EdgeError('EDGE_ORIGIN_TOO_LARGE', `the source is larger than the ${limit}-byte limit`, { limit });
}

/** Bytes an inspector is shown at most. */
export const INSPECT_LIMIT = 64 * 1024;

/**
 * Collects a body, stopping (and destroying the stream) as soon as it passes `limit` bytes, or
 * as soon as `inspect` refuses what the first bytes show.
 */
export async function readLimited(
  stream: AsyncIterable<Buffer> & { destroy(err?: Error): void },
  limit: number,
  inspect?: (head: Buffer) => boolean,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  let inspecting = inspect !== undefined;
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > limit) {
      const err = tooLarge(limit);
      stream.destroy(err);
      throw err;
    }
    chunks.push(chunk);
    if (inspecting) {
      const head = Buffer.concat(chunks, total).subarray(0, INSPECT_LIMIT);
      try {
        inspecting = !inspect!(head) && total < INSPECT_LIMIT;
      } catch (err) {
        stream.destroy(err as Error);
        throw err;
      }
    }
  }
  return Buffer.concat(chunks, total);
}
