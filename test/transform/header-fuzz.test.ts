/**
 * Bounded fuzz of the code that reads untrusted bytes and queries before anything else does:
 * readHeader (random bytes behind real magic, mutated real headers) and parseParams.
 * Fixed seed, fixed case counts: a failure names its seed and case; replay with HEADER_FUZZ_SEED.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { EdgeError } from '../../src/errors.js';
import { HEADER_LIMIT, readHeader, type HeaderInfo } from '../../src/transform/header.js';
import { TRANSFORM_PARAM_NAMES, parseParams } from '../../src/transform/params.js';

const SEED = Number(process.env.HEADER_FUZZ_SEED ?? 0x5eed1e55);
const CALL_LIMIT_MS = 50;

/** mulberry32: small, fast, and the same sequence everywhere for one seed. */
function random(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  /** Bytes biased towards the values parsers trip on: 0x00, 0xff and small numbers. */
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      const k = next();
      b[i] = k < 0.2 ? 0 : k < 0.4 ? 0xff : k < 0.6 ? int(16) : int(256);
    }
    return b;
  };
  return { next, int, pick, bytes };
}
type Random = ReturnType<typeof random>;

/** Runs one call: it must return or throw an EdgeError with one of `codes`, within CALL_LIMIT_MS. */
function fuzzCall<T>(where: string, codes: string[], call: () => T, check: (v: T) => void): void {
  const context = `seed=0x${SEED.toString(16)} ${where}`;
  const t0 = performance.now();
  try {
    check(call());
  } catch (err) {
    if (err instanceof assert.AssertionError) throw new assert.AssertionError({ message: `${context}: ${err.message}` });
    assert.ok(err instanceof EdgeError && codes.includes(err.code), `${context}: threw ${(err as Error)?.stack ?? String(err)}`);
  }
  const ms = performance.now() - t0;
  assert.ok(ms < CALL_LIMIT_MS, `${context}: took ${ms.toFixed(1)} ms`);
}

function checkHeader(h: HeaderInfo): void {
  const positiveInt = (v: number | undefined) => v === undefined || (Number.isInteger(v) && v > 0);
  assert.ok(positiveInt(h.width) && positiveInt(h.height), `size ${h.width}x${h.height}`);
  assert.ok(positiveInt(h.frames), `frames ${h.frames}`);
  assert.ok(Number.isInteger(h.orientation) && h.orientation >= 1 && h.orientation <= 8, `orientation ${h.orientation}`);
  assert.equal(typeof h.complete, 'boolean');
}

const fuzzHeader = (where: string, input: Buffer) => fuzzCall(where, ['EDGE_NOT_AN_IMAGE', 'EDGE_BAD_IMAGE'], () => readHeader(input), checkHeader);

const MAGICS = [
  [0xff, 0xd8, 0xff],
  [0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, ...Buffer.from('Exif\0\0II*\0')],
  [0x89, ...Buffer.from('PNG\r\n\x1a\n', 'latin1'), 0, 0, 0, 13, ...Buffer.from('IHDR')],
  [...Buffer.from('GIF89a')],
  [...Buffer.from('GIF87a')],
  [...Buffer.from('RIFF\xff\xff\xff\xffWEBPVP8 ', 'latin1')],
  [...Buffer.from('RIFF\xff\xff\xff\x7fWEBPVP8L', 'latin1')],
  [...Buffer.from('RIFF\x00\x01\x00\x00WEBPVP8X\x0a\0\0\0', 'latin1')],
  [0, 0, 0, 0x1c, ...Buffer.from('ftypavif\0\0\0\0mif1miafavis')],
  [0, 0, 0, 0x18, ...Buffer.from('ftypheic\0\0\0\0mif1heic')],
  [...Buffer.from('II*\0')],
  [...Buffer.from('MM\0*')],
  [...Buffer.from('<svg ')],
  [...Buffer.from('<?xml version="1.0"?>\n<!-- x --><svg width="')],
].map((m) => Buffer.from(m));

/** A length field (`size` bytes at `at`) and the chunk `[start, end)` it measures. */
interface Part {
  at: number;
  size: 2 | 4;
  le: boolean;
  start: number;
  end: number;
}

/** The chunks of a real file, so mutations can hit length fields and duplicate whole chunks. */
function partsOf(b: Buffer): Part[] {
  const parts: Part[] = [];
  const sig = b.toString('latin1', 0, 4);
  if (b[0] === 0xff && b[1] === 0xd8) {
    for (let pos = 2; pos + 4 <= b.length && b[pos + 1] !== 0xda; pos += 2 + b.readUInt16BE(pos + 2)) {
      parts.push({ at: pos + 2, size: 2, le: false, start: pos, end: pos + 2 + b.readUInt16BE(pos + 2) });
    }
  } else if (sig === '\x89PNG') {
    for (let pos = 8; pos + 12 <= b.length; pos += 12 + b.readUInt32BE(pos)) {
      parts.push({ at: pos, size: 4, le: false, start: pos, end: pos + 12 + b.readUInt32BE(pos) });
    }
  } else if (sig === 'RIFF') {
    for (let pos = 12; pos + 8 <= b.length; pos += 8 + b.readUInt32LE(pos + 4) + (b.readUInt32LE(pos + 4) & 1)) {
      parts.push({ at: pos + 4, size: 4, le: true, start: pos, end: pos + 8 + b.readUInt32LE(pos + 4) });
    }
  } else if (b.toString('latin1', 4, 8) === 'ftyp') {
    const CONTAINERS: Record<string, number> = { meta: 12, iprp: 8, ipco: 8 };
    const boxes = (start: number, end: number): void => {
      for (let pos = start; pos + 8 <= end && b.readUInt32BE(pos) >= 8; pos += b.readUInt32BE(pos)) {
        const size = b.readUInt32BE(pos);
        parts.push({ at: pos, size: 4, le: false, start: pos, end: pos + size });
        const inner = CONTAINERS[b.toString('latin1', pos + 4, pos + 8)];
        if (inner) boxes(pos + inner, Math.min(pos + size, end));
      }
    };
    boxes(0, b.length);
  }
  return parts.filter((p) => p.end <= b.length);
}

function mutate(r: Random, seed: Buffer): Buffer {
  let b = Buffer.from(seed);
  const parts = partsOf(b);
  for (let n = 1 + r.int(4); n > 0 && b.length > 0; n--) {
    const i = r.int(b.length);
    const part = parts.length ? r.pick(parts) : undefined;
    switch (r.int(7)) {
      case 0:
        b[i] = b[i]! ^ (1 << r.int(8));
        break;
      case 1:
        b[i] = r.pick([0, 0xff, r.int(256)]);
        break;
      case 2:
        b = b.subarray(0, r.int(b.length + 1));
        break;
      case 3: // a length field claims far more (or less) than there is
        if (part && part.at + part.size <= b.length) {
          const v = r.pick([0xffffffff, 0x7fffffff, 0x80000000, 0, 1, r.int(2 ** 32)]);
          if (part.size === 4) b[part.le ? 'writeUInt32LE' : 'writeUInt32BE'](v >>> 0, part.at);
          else b.writeUInt16BE(v & 0xffff, part.at);
        }
        break;
      case 4:
        if (i + 4 <= b.length) b.writeUInt32BE(0xffffffff, i);
        break;
      case 5: // a chunk twice
        if (part && part.end <= b.length) b = Buffer.concat([b.subarray(0, part.end), b.subarray(part.start, part.end), b.subarray(part.end)]);
        break;
      default: // a random run of bytes
        b = Buffer.concat([b.subarray(0, i), r.bytes(r.int(64)), b.subarray(i + r.int(64))]);
    }
  }
  return b;
}

let seeds: { name: string; buf: Buffer }[] = [];
before(async () => {
  const rgb = sharp({ create: { width: 48, height: 32, channels: 3, background: { r: 200, g: 60, b: 20 } } });
  const rgba = sharp({ create: { width: 48, height: 32, channels: 4, background: { r: 20, g: 60, b: 200, alpha: 0.5 } } });
  const frames = await Promise.all(['red', 'green', 'blue'].map((c) => sharp({ create: { width: 48, height: 32, channels: 3, background: c } }).png().toBuffer()));
  const gif = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
  const exif = { IFD0: { Copyright: '(c) Fuzz', Artist: 'F' } };
  const made: [string, Promise<Buffer>][] = [
    ['jpeg', rgb.clone().jpeg({ progressive: true }).withIccProfile('p3').withExif(exif).withMetadata({ orientation: 6 }).toBuffer()],
    ['jpeg cmyk', rgb.clone().toColourspace('cmyk').jpeg().toBuffer()],
    ['png', rgba.clone().png({ palette: true }).withExif(exif).toBuffer()],
    ['png grey', rgb.clone().toColourspace('b-w').png().withMetadata({ orientation: 3 }).toBuffer()],
    ['gif', Promise.resolve(gif)],
    ['webp lossy', rgba.clone().webp().withExif(exif).toBuffer()],
    ['webp lossless', rgba.clone().webp({ lossless: true }).toBuffer()],
    ['webp animated', sharp(gif, { animated: true }).webp().toBuffer()],
    ['avif', rgba.clone().avif({ effort: 0 }).withIccProfile('p3').withMetadata({ orientation: 6 }).toBuffer()],
    ['tiff', rgb.clone().tiff({ compression: 'lzw' }).withExif(exif).withMetadata({ orientation: 8 }).toBuffer()],
    ['tiff pages', sharp(gif, { animated: true }).tiff().toBuffer()],
    ['svg', Promise.resolve(Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" viewBox="0 0 64 48"><rect width="9" height="9"/></svg>'))],
  ];
  seeds = await Promise.all(made.map(async ([name, buf]) => ({ name, buf: (await buf).subarray(0, HEADER_LIMIT) })));
});

/** SVG's own tokens in long runs: what makes a regex backtrack. */
const SVG_TOKENS = ['<svg', '<!doctype svg', ' ', '\t', '\n', '=', '"', "'", '>', '/', 'width', 'height', 'viewBox', '1', '0', '.', 'e', '-', ',', 'px', '%', 'in', 'a', '<!--', '-->', '<?xml', '?>', '[', ']', '<', '\uFEFF'];

function svgLike(r: Random): Buffer {
  const parts = [r.pick(['<svg ', '<svg\n', '<?xml version="1.0"?><svg ', '<!-- c --> <svg '])];
  for (let n = r.int(12); n > 0; n--) parts.push(r.pick(SVG_TOKENS).repeat(r.int(4) === 0 ? 1 + r.int(8000) : 1 + r.int(4)));
  return Buffer.from(parts.join(''));
}

describe('readHeader fuzz', () => {
  it('random bytes behind every magic prefix: a HeaderInfo or an EdgeError, fast', () => {
    const r = random(SEED);
    for (let i = 0; i < 4000; i++) {
      const length = i % 100 === 0 ? HEADER_LIMIT + r.int(4096) : r.int(i % 10 === 0 ? 8192 : 256);
      fuzzHeader(`random case ${i}`, Buffer.concat([r.pick(MAGICS), r.bytes(length)]));
    }
  });

  it('SVG-like text with long runs of its tokens: same, and no regex backtracks', () => {
    const r = random(SEED + 3);
    for (let i = 0; i < 1500; i++) fuzzHeader(`svg case ${i}`, svgLike(r));
  });

  it('mutated real headers (bit flips, 0x00/0xff bytes, truncation, inflated lengths, chunks twice): same', () => {
    const r = random(SEED + 1);
    for (let i = 0; i < 6000; i++) {
      const seed = seeds[i % seeds.length]!;
      fuzzHeader(`mutation case ${i} of ${seed.name}`, mutate(r, seed.buf));
    }
  });
});

const HOSTILE_VALUES = [
  '', ' ', '0', '-0', '-1', '+1', '1.', '.5', '0.5', '1e3', '1e309', 'Infinity', '-Infinity', 'NaN', '0x10', '0b1',
  '9'.repeat(400), '1'.repeat(20), '8192', '8193', '100', '5', '2', '359', '360', '90', '270', 'true', 'false',
  '１２', '٣', '😀', 'é', '\u0000', '\uFFFD', '%', '%zz', '%00', '1,2,3,4', '0,0,-1,1', '1,2,3', '16:9', '0:1', '1:0', ':',
  '#fff', 'fff', '80ff0000', 'ggg', '#', 'top,left', 'faces,entropy', 'focalpoint', 'edges,,', 'format,compress', 'crop',
  'clip', 'CROP', 'webp', 'png8', 'jpeg', 'json', 'hv', 'vh', 'auto', '__proto__', 'constructor', 'toString', 'a'.repeat(10_000),
];
const KEYS = [...TRANSFORM_PARAM_NAMES, 'utm_source', '__proto__', 'W', 'w ', ''];

function hostileValue(r: Random): string {
  switch (r.int(4)) {
    case 0:
      return String((r.next() - 0.5) * 10 ** r.int(12));
    case 1:
      return String.fromCodePoint(...Array.from({ length: 1 + r.int(8) }, () => r.int(0x10ffff + 1))).replace(/[\uD800-\uDFFF]/g, '');
    default:
      return r.pick(HOSTILE_VALUES);
  }
}

describe('parseParams fuzz', () => {
  it('hostile query strings from the known names: parsed or EDGE_BAD_PARAM naming a parameter, fast', () => {
    const r = random(SEED + 2);
    for (let i = 0; i < 4000; i++) {
      const query = new URLSearchParams();
      for (let n = 1 + r.int(6); n > 0; n--) query.append(r.pick(KEYS), hostileValue(r));
      const raw = r.int(5) === 0 ? query.toString().replace(/%2C/g, ',') + '&' + r.pick(HOSTILE_VALUES) : query.toString();
      fuzzCall(`params case ${i}: ${raw.slice(0, 200)}`, ['EDGE_BAD_PARAM'], () => parseParams(new URLSearchParams(raw)), (p) => {
        assert.equal(typeof p.canonical, 'string');
        assert.equal(typeof p.hasTransform, 'boolean');
      });
    }
  });
});
