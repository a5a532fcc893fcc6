/**
 * The data-mining query of docs/API.md, run as written (jq) over the log records of a real edge
 * process with its API on: it finds exactly the optimization the question describes. The only
 * changes to the command are the day (today, not 3 days ago), the key, and the log file.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { MAIN_JS, removeDir, tempDir } from '../helpers/edge.js';
import { KEY, krakenClient, OTHER_KEY } from '../helpers/api.js';
import { photoJpeg } from '../helpers/images.js';
import { freePort } from '../helpers/processes.js';

const API_MD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/API.md');

/** The fenced block after the `<!-- query` marker in docs/API.md. */
async function documentedQuery(): Promise<string> {
  const md = await readFile(API_MD, 'utf8');
  const m = /<!-- query[^\n]*-->\n```sh\n([\s\S]*?)```/.exec(md);
  assert.ok(m, 'docs/API.md has the query block');
  return m[1]!;
}

describe('the log query of docs/API.md', () => {
  let dir: string;
  let stop: () => Promise<void>;
  let api: string;
  let log: string;

  before(async () => {
    if (spawnSync('jq', ['--version']).error) {
      if (process.env.CI === 'true') throw new Error('jq is not installed: apt-get install -y jq');
      return;
    }
    dir = await tempDir('imgedge-logq-');
    log = path.join(dir, 'imgedge.log');
    const port = await freePort();
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      cache: { dir: path.join(dir, 'cache') },
      api: { port, keys: [{ key: KEY.api_key, secret: KEY.api_secret }, { key: OTHER_KEY.api_key, secret: OTHER_KEY.api_secret }] },
      sites: [{ name: 'test', origin: 'http://127.0.0.1:9' }],
    }));
    const child = spawn(process.execPath, [MAIN_JS], { env: { ...process.env, IMGEDGE_CONFIG: config, IMGEDGE_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.pipe(createWriteStream(log));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('optimization API listening')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the edge exited with ${code}`)));
    });
    api = `http://127.0.0.1:${port}`;
    stop = () => new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  });

  after(async () => {
    await stop?.();
    if (dir) await removeDir(dir);
  });

  it('finds the lossless JPEG with an ICC profile and many colours, by that key, and nothing else', async (t) => {
    if (!api) return t.skip('jq is not installed');
    const photo = await photoJpeg({ width: 800, height: 600, quality: 92 });
    const withIcc = await sharp(photo).withIccProfile('p3').jpeg({ quality: 92 }).toBuffer();
    const flatWithIcc = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#3366aa' } }).withIccProfile('p3').jpeg().toBuffer();
    const big = await photoJpeg({ width: 2400, height: 1800, quality: 98 });
    assert.ok(withIcc.length < 800 * 1024 && big.length > 800 * 1024, `${withIcc.length}, ${big.length}`);
    const mine = krakenClient(api);
    const wanted = await mine.upload({ file: { value: withIcc, filename: 'wanted.jpg' }, wait: true });
    const others = [
      await mine.upload({ file: { value: withIcc, filename: 'lossy.jpg' }, wait: true, lossy: true }),
      await mine.upload({ file: { value: photo, filename: 'no-icc.jpg' }, wait: true }),
      await mine.upload({ file: { value: flatWithIcc, filename: 'flat.jpg' }, wait: true }),
      await mine.upload({ file: { value: await sharp(big).withIccProfile('p3').jpeg({ quality: 98 }).toBuffer(), filename: 'big.jpg' }, wait: true }),
      await krakenClient(api, OTHER_KEY).upload({ file: { value: withIcc, filename: 'other-key.jpg' }, wait: true }),
    ];
    for (const r of [wanted, ...others]) assert.equal(r.success, true, JSON.stringify(r));

    const command = (await documentedQuery())
      .replace("'3 days ago'", "'today'")
      .replace('--arg key X', `--arg key ${KEY.api_key}`)
      .replace(/imgedge\.log\s*$/, log);
    const out = execFileSync('bash', ['-c', command], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(out.length, 1, JSON.stringify(out));
    assert.equal(out[0]!.original_size, withIcc.length);
    assert.deepEqual(out[0]!.kraked_sizes, [wanted.kraked_size]);
    assert.deepEqual(out[0]!.kraked_dims, ['800x600']);
    assert.equal(out[0]!.exif, false, 'sharp wrote the source with its profile and no EXIF');
    assert.ok((out[0]!.colours as number) > 10000);
  });
});
