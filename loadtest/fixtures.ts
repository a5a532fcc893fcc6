/**
 * Source images the benchmark draws itself (photo-like: gradients, shapes, noise), kept under
 * .cache/loadtest-fixtures/ between runs so a rerun does not redraw them.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { photoJpeg } from '../test/helpers/images.js';

export interface FixtureSet {
  dir: string;
  /** hot/<i>.jpg, 1200×800: the hit scenarios' sources */
  hot: number;
  /** miss/<i>.jpg, 2725×2225 (the size PEERS.md measured sharp on): the miss scenario's sources */
  miss: number;
  /** big/<i>.jpg, 3464×2309 = 8 megapixels: the memory scenario's sources */
  big: number;
}

const SETS = [
  { name: 'hot', count: 20, width: 1200, height: 800 },
  { name: 'miss', count: 4, width: 2725, height: 2225 },
  { name: 'big', count: 4, width: 3464, height: 2309 },
] as const;

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

export async function drawFixtures(root: string, log: (line: string) => void): Promise<FixtureSet> {
  const dir = path.join(root, '.cache/loadtest-fixtures/v1');
  for (const set of SETS) {
    await mkdir(path.join(dir, set.name), { recursive: true });
    for (let i = 0; i < set.count; i++) {
      const file = path.join(dir, set.name, `${i}.jpg`);
      if (await exists(file)) continue;
      log(`drawing ${set.name}/${i}.jpg (${set.width}×${set.height})`);
      await writeFile(file, await photoJpeg({ width: set.width, height: set.height, quality: 90, seed: 1000 * (SETS.indexOf(set) + 1) + i }));
    }
  }
  return { dir, hot: SETS[0].count, miss: SETS[1].count, big: SETS[2].count };
}
