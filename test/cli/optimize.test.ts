import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { photoJpeg, quadrantPng } from '../helpers/images.js';

const CLI = fileURLToPath(new URL('../../src/cli/optimize.js', import.meta.url));

/** A 35-byte 1×1 GIF: no encoder writes it smaller, so it must stay as it is. */
const TINY_GIF = Buffer.from('474946383761' + '01000100800000' + '000000ffffff' + '2c000000000100010000' + '02024401003b', 'hex');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function optimize(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

/** in/photo.jpg (q95), in/nested/quad.png (4 colours), in/notes.txt, in/broken.jpg (truncated). */
async function fillFolder(root: string): Promise<void> {
  await mkdir(join(root, 'in', 'nested'), { recursive: true });
  const photo = await photoJpeg({ quality: 95 });
  await writeFile(join(root, 'in', 'photo.jpg'), photo);
  await writeFile(join(root, 'in', 'nested', 'quad.png'), await quadrantPng());
  await writeFile(join(root, 'in', 'notes.txt'), 'not an image\n');
  await writeFile(join(root, 'in', 'broken.jpg'), photo.subarray(0, photo.length >> 1));
}

const size = async (path: string) => (await stat(path)).size;

describe('imgedge-optimize', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'imgedge-cli-'));
    await fillFolder(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('writes smaller images under --out, mirroring folders, and reports skipped and broken files', async () => {
    const run = await optimize(['in', '--out', 'out'], root);
    assert.equal(run.code, 1, run.stderr);
    for (const rel of ['photo.jpg', join('nested', 'quad.png')]) {
      const [src, out] = [join(root, 'in', rel), join(root, 'out', rel)];
      assert.ok((await size(out)) < (await size(src)), `${rel} is smaller`);
      const [a, b] = await Promise.all([sharp(src).metadata(), sharp(out).metadata()]);
      assert.deepEqual([b.width, b.height], [a.width, a.height]);
    }
    assert.match(run.stdout, /in\/photo\.jpg {2}\S+ kB → \S+ kB {2}\(-\d+\.\d %\) {2}q=\d+/);
    assert.match(run.stdout, /in\/notes\.txt {2}skipped/);
    assert.match(run.stdout, /in\/broken\.jpg {2}failed EDGE_BAD_IMAGE/);
    assert.match(run.stdout, /^total .* \d+ B → \d+ B {2}\(-\d+\.\d %/m);
    await assert.rejects(stat(join(root, 'out', 'notes.txt')));
    await assert.rejects(stat(join(root, 'out', 'broken.jpg')));
  });

  it('prints Kraken.io-shaped JSON with --json', async () => {
    const run = await optimize(['in', '--out', 'out-json', '--json'], root);
    assert.equal(run.code, 1);
    const results = JSON.parse(run.stdout) as Record<string, unknown>[];
    assert.deepEqual(results.map((r) => r.file_name), ['in/broken.jpg', 'in/nested/quad.png', 'in/notes.txt', 'in/photo.jpg']);
    for (const r of results) {
      for (const key of ['file_name', 'original_size', 'kraked_size', 'saved_bytes', 'original_width', 'original_height', 'success', 'quality']) {
        assert.ok(key in r, `${key} in ${JSON.stringify(r)}`);
      }
      assert.equal(r.saved_bytes, (r.original_size as number) - (r.kraked_size as number));
    }
    const [broken, quad, notes, photo] = results as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.equal(broken.success, false);
    assert.match(String(broken.error), /^EDGE_BAD_IMAGE: /);
    assert.equal(notes.success, false);
    assert.equal(notes.skipped, true);
    assert.deepEqual([photo.success, photo.original_width, photo.original_height], [true, 640, 480]);
    assert.equal(typeof photo.quality, 'number');
    assert.ok((quad.saved_bytes as number) > 0 && (photo.saved_bytes as number) > 0);
  });

  it('writes new names for --format webp', async () => {
    const run = await optimize(['in/photo.jpg', '--out', 'out-webp', '--format', 'webp'], root);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await sharp(join(root, 'out-webp', 'photo.webp')).metadata()).format, 'webp');
  });

  it('replaces files in place only when they got smaller', async () => {
    const dir = join(root, 'inplace');
    await mkdir(dir);
    const photo = await photoJpeg({ quality: 95 });
    await writeFile(join(dir, 'photo.jpg'), photo);
    await writeFile(join(dir, 'dot.gif'), TINY_GIF);
    const run = await optimize(['inplace', '--in-place'], root);
    assert.equal(run.code, 0, run.stderr);
    const replaced = await readFile(join(dir, 'photo.jpg'));
    assert.ok(replaced.length < photo.length);
    assert.equal((await sharp(replaced).metadata()).width, 640);
    assert.ok((await readFile(join(dir, 'dot.gif'))).equals(TINY_GIF), 'the GIF that could not shrink is untouched');
    assert.match(run.stdout, /dot\.gif .*kept original/);
  });

  it('answers bad usage with exit code 2 and the usage text', async () => {
    for (const args of [[], ['in', '--bogus'], ['in', '--quality', 'max'], ['in', '--in-place', '--format', 'webp'], ['in', '--in-place', '--out', 'x']]) {
      const run = await optimize(args, root);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /Usage: imgedge-optimize/);
    }
  });
});
