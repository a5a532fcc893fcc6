import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { checkVariantBounds, VariantCounter, type VariantBounds } from '../../src/optimize/variant-bounds.js';
import { parseParams } from '../../src/transform/params.js';

const params = (q: string) => parseParams(new URLSearchParams(q)).params;

function assertRefused(fn: () => void, code: string, status: number, param?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EdgeError);
    assert.equal(err.code, code);
    assert.equal(statusOf(err), status);
    if (param) assert.equal(err.details.param, param);
    return true;
  });
}

describe('checkVariantBounds', () => {
  const bounds: VariantBounds = { widths: [320, 640, 1280], qualities: [50, 75] };

  it('passes allowed widths and qualities, and requests without w or q', () => {
    for (const q of ['w=320', 'w=640&q=75', 'w=1280&q=50', 'q=50', 'h=999', 'auto=compress', 'w=320&dpr=1']) {
      checkVariantBounds(params(q), bounds);
    }
  });

  it('checks w after dpr, as output pixels', () => {
    checkVariantBounds(params('w=160&dpr=2'), bounds);
    checkVariantBounds(params('w=320&dpr=4'), bounds);
    assertRefused(() => checkVariantBounds(params('w=320&dpr=2.5'), bounds), 'EDGE_BAD_PARAM', 400, 'w');
  });

  it('refuses other widths with 400 naming w', () => {
    for (const q of ['w=321', 'w=1', 'w=8192', 'w=640&dpr=3']) {
      assertRefused(() => checkVariantBounds(params(q), bounds), 'EDGE_BAD_PARAM', 400, 'w');
    }
  });

  it('refuses other qualities with 400 naming q', () => {
    for (const q of ['q=51', 'w=640&q=100', 'q=1']) {
      assertRefused(() => checkVariantBounds(params(q), bounds), 'EDGE_BAD_PARAM', 400, 'q');
    }
  });

  it('does not limit h with a width list, nor anything without lists', () => {
    checkVariantBounds(params('w=640&h=12'), bounds);
    checkVariantBounds(params('w=777&q=13'), {});
    checkVariantBounds(params('w=777'), { qualities: [75] });
  });
});

describe('VariantCounter', () => {
  const tooMany = (fn: () => void) => assertRefused(fn, 'EDGE_TOO_MANY_VARIANTS', 429);

  it('admits up to the cap per source and refuses the next new one', () => {
    const counter = new VariantCounter(3);
    for (const v of ['v1', 'v2', 'v3']) counter.admit('src', v);
    tooMany(() => counter.admit('src', 'v4'));
    tooMany(() => counter.admit('src', 'v5'));
  });

  it('re-admits a variant it already counted', () => {
    const counter = new VariantCounter(2);
    counter.admit('src', 'v1');
    counter.admit('src', 'v2');
    tooMany(() => counter.admit('src', 'v3'));
    counter.admit('src', 'v1');
    counter.admit('src', 'v2');
  });

  it('counts sources independently', () => {
    const counter = new VariantCounter(1);
    counter.admit('a', 'v1');
    counter.admit('b', 'v1');
    counter.admit('c', 'v2');
    tooMany(() => counter.admit('a', 'v2'));
    tooMany(() => counter.admit('b', 'v2'));
  });

  it('starts afresh after forget()', () => {
    const counter = new VariantCounter(1);
    counter.admit('src', 'v1');
    tooMany(() => counter.admit('src', 'v2'));
    counter.forget('src');
    counter.admit('src', 'v2');
  });

  it('keeps memory bounded: the least recently used source is dropped', () => {
    const counter = new VariantCounter(1, 2);
    counter.admit('a', 'v1');
    counter.admit('b', 'v1');
    counter.admit('a', 'v1'); // a is now the more recent
    counter.admit('c', 'v1'); // drops b
    tooMany(() => counter.admit('a', 'v2'));
    counter.admit('b', 'v2');
  });
});
