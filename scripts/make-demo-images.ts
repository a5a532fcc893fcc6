/**
 * Draws the demo origin's images (examples/site/images/). The project makes its own pictures,
 * so the demo and the tests carry no third-party images. Run: npm run demo:images
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alphaPng, animatedGif, orientedJpeg, photoJpeg } from '../test/helpers/images.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/site/images');

const images: Record<string, () => Promise<Buffer>> = {
  'landscape.jpg': () => photoJpeg({ width: 2400, height: 1600, quality: 92 }),
  'portrait.jpg': () => photoJpeg({ width: 1200, height: 1800, quality: 92 }),
  'logo.png': () => alphaPng({ width: 600, height: 600 }),
  'spinner.gif': () => animatedGif({ frames: 8, width: 160, height: 160 }),
  'rotated.jpg': () => orientedJpeg(6, { width: 1200, height: 800 }),
};

await mkdir(root, { recursive: true });
for (const [name, make] of Object.entries(images)) {
  const body = await make();
  await writeFile(path.join(root, name), body);
  process.stdout.write(`${name}: ${body.length} bytes\n`);
}
