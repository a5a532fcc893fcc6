/**
 * A JPEG made smaller without touching its pixels: jpegtran (libjpeg-turbo) rewrites the same
 * DCT coefficients with optimal Huffman tables, baseline and progressive, and the smaller wins.
 * Metadata goes unless asked for; an EXIF orientation other than 1 is carried over in a minimal
 * APP1 segment of its own, or the image would show turned.
 */
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { EdgeError } from '../errors.js';

export const JPEGTRAN = process.env.IMGEDGE_JPEGTRAN ?? 'jpegtran';

function jpegtran(args: string[], input: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(JPEGTRAN, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => reject(new EdgeError('EDGE_INTERNAL', `jpegtran cannot run (${(e as NodeJS.ErrnoException).code}); install libjpeg-turbo-progs`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new EdgeError('EDGE_BAD_IMAGE', `the JPEG cannot be optimized losslessly: ${signal ? `timed out (${signal})` : err.trim() || `exit ${code}`}`));
    });
    child.stdin.on('error', () => {}); // jpegtran may stop reading early on a damaged file; close reports it
    child.stdin.end(input);
  });
}

/** The APP1 (EXIF) segment of a tiny JPEG carrying nothing but `orientation`. */
async function orientationSegment(orientation: number): Promise<Buffer> {
  const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).jpeg().withMetadata({ orientation }).toBuffer();
  for (let at = 2; at + 4 <= tiny.length && tiny[at] === 0xff; ) {
    const marker = tiny[at + 1]!;
    const length = tiny.readUInt16BE(at + 2);
    if (marker === 0xe1) return tiny.subarray(at, at + 2 + length);
    at += 2 + length;
  }
  throw new Error('sharp wrote no EXIF segment');
}

export interface LosslessJpegOptions {
  /** keep the ICC profile */
  keepProfile: boolean;
  /** keep every EXIF field (date, copyright, geotag): jpegtran copies the block whole */
  keepExif: boolean;
  orientation: number;
  timeoutMs: number;
}

export async function optimizeJpegLosslessly(source: Buffer, o: LosslessJpegOptions): Promise<Buffer> {
  const copy = o.keepExif ? 'all' : o.keepProfile ? 'icc' : 'none';
  const [baseline, progressive] = await Promise.all([
    jpegtran(['-copy', copy, '-optimize'], source, o.timeoutMs),
    jpegtran(['-copy', copy, '-optimize', '-progressive'], source, o.timeoutMs),
  ]);
  let best = progressive.length < baseline.length ? progressive : baseline;
  if (!o.keepExif && o.orientation !== 1) {
    // Right after SOI, where a JFIF/EXIF APP segment belongs.
    best = Buffer.concat([best.subarray(0, 2), await orientationSegment(o.orientation), best.subarray(2)]);
  }
  return best;
}
