/**
 * The benchmark's judge: Google's reference Butteraugli (Debian's `butteraugli` package, the
 * 2017 command-line tool), which the quality search never consults. It prints the max-norm
 * distance: below 1 no visible difference, 1–2 barely, above 3 plainly visible (its README).
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { RawImage } from '../src/transform/types.js';

const run = promisify(execFile);
export const BUTTERAUGLI = '/usr/bin/butteraugli';

export async function checkButteraugli(): Promise<void> {
  try {
    await access(BUTTERAUGLI);
  } catch {
    throw new Error(`${BUTTERAUGLI} is missing: apt-get install -y butteraugli (Debian's reference build is the judge)`);
  }
}

const png = (img: RawImage) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 3 | 4 } }).png({ compressionLevel: 1 }).toBuffer();

/** Butteraugli distance of `encoded` (any format sharp decodes) against `ref`, alpha over white. */
export async function butteraugli(ref: RawImage, encoded: Buffer): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'butteraugli-'));
  try {
    const a = path.join(dir, 'ref.png');
    const b = path.join(dir, 'dist.png');
    const decoded = await sharp(encoded).flatten({ background: '#ffffff' }).png({ compressionLevel: 1 }).toBuffer();
    const flatRef = ref.channels === 4 ? await sharp(await png(ref)).flatten({ background: '#ffffff' }).png({ compressionLevel: 1 }).toBuffer() : await png(ref);
    await Promise.all([writeFile(a, flatRef), writeFile(b, decoded)]);
    const { stdout } = await run(BUTTERAUGLI, [a, b]);
    const d = Number.parseFloat(stdout.trim());
    if (!Number.isFinite(d)) throw new Error(`butteraugli printed ${JSON.stringify(stdout)}`);
    return d;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
