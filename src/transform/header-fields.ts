/** Bounds-checked reads for the header parsers: a read past the prefix never happens, it throws OutOfBytes. */
import { EdgeError } from '../http/errors.js';
import type { SourceFormat } from './types.js';

/** The prefix ends before a field a parser needs; readHeader returns what is known so far. */
export class OutOfBytes extends Error {}

export function need(b: Buffer, end: number): void {
  if (end > b.length) throw new OutOfBytes();
}

export function malformed(format: SourceFormat, why: string): EdgeError {
  return new EdgeError('EDGE_BAD_IMAGE', 422, `the ${format} header is malformed: ${why}`);
}

export function u8(b: Buffer, at: number): number {
  need(b, at + 1);
  return b[at]!;
}

export function u16(b: Buffer, at: number, le: boolean): number {
  need(b, at + 2);
  return le ? b.readUInt16LE(at) : b.readUInt16BE(at);
}

export function u24le(b: Buffer, at: number): number {
  need(b, at + 3);
  return b.readUIntLE(at, 3);
}

export function u32(b: Buffer, at: number, le: boolean): number {
  need(b, at + 4);
  return le ? b.readUInt32LE(at) : b.readUInt32BE(at);
}

export function ascii(b: Buffer, at: number, length: number): string {
  need(b, at + length);
  return b.toString('latin1', at, at + length);
}

/** True when `[start, end)` is long enough for `sig` and begins with it. */
export function startsWith(b: Buffer, start: number, end: number, sig: string): boolean {
  return end - start >= sig.length && ascii(b, start, sig.length) === sig;
}
