import { EdgeError } from '../http/errors.js';

export function tooLarge(limit: number): EdgeError {
  return new EdgeError('EDGE_ORIGIN_TOO_LARGE', 413, `the source is larger than the ${limit}-byte limit`, { limit });
}

/** Collects a body, stopping (and destroying the stream) as soon as it passes `limit` bytes. */
export async function readLimited(stream: AsyncIterable<Buffer> & { destroy(err?: Error): void }, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > limit) {
      const err = tooLarge(limit);
      stream.destroy(err);
      throw err;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
