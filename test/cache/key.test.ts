import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeCacheKey, sourceHashOf, type CacheKeyParts } from '../../src/cache/key.js';

const base: CacheKeyParts = { site: 'shop', path: '/p/sku1.jpg', sourceQuery: 'v=2', spec: 'fit=clip&w=400', format: 'webp' };

describe('makeCacheKey', () => {
  it('gives the same key for the same inputs', () => {
    assert.deepEqual(makeCacheKey(base), makeCacheKey({ ...base }));
  });

  it('uses versioned canonical strings and their sha256 hex', () => {
    const key = makeCacheKey(base);
    assert.equal(key.source, 'v1|shop|/p/sku1.jpg|v=2');
    assert.equal(key.variant, 'v1|shop|/p/sku1.jpg|v=2|fit=clip&w=400|webp');
    assert.match(key.sourceHash, /^[0-9a-f]{64}$/);
    assert.match(key.variantHash, /^[0-9a-f]{64}$/);
  });

  it('changes with every part; only source parts change the source hash', () => {
    const original = makeCacheKey(base);
    for (const part of ['site', 'path', 'sourceQuery', 'spec', 'format'] as const) {
      const changed = makeCacheKey({ ...base, [part]: `${base[part]}x` });
      assert.notEqual(changed.variantHash, original.variantHash, part);
      const sourcePart = part === 'site' || part === 'path' || part === 'sourceQuery';
      assert.equal(changed.sourceHash !== original.sourceHash, sourcePart, part);
    }
  });

  it('cannot be fooled by separators or escapes moving across part boundaries', () => {
    const variants: CacheKeyParts[] = [
      { ...base, path: '/a|b', sourceQuery: '' },
      { ...base, path: '/a', sourceQuery: 'b|' },
      { ...base, path: '/a', sourceQuery: '|b' },
      { ...base, path: '/a%7Cb', sourceQuery: '' },
      { ...base, spec: 'w=1|webp', format: '' },
      { ...base, spec: 'w=1', format: 'webp' },
      { ...base, spec: 'w=1%7C', format: 'webp' },
      { ...base, site: 'shop|/p', path: '' },
    ];
    const hashes = new Set(variants.map((parts) => makeCacheKey(parts).variantHash));
    assert.equal(hashes.size, variants.length);
  });

  it('sourceHashOf matches the key’s sourceHash', () => {
    assert.equal(sourceHashOf(base.site, base.path, base.sourceQuery), makeCacheKey(base).sourceHash);
  });
});
