import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { TRANSFORM_PARAM_NAMES, parseParams } from '../../src/transform/params.js';

const parse = (q: string) => parseParams(new URLSearchParams(q));

function assertBadParam(query: string, param: string): void {
  assert.throws(() => parse(query), (err: unknown) => {
    assert.ok(err instanceof EdgeError, `${query}: expected an EdgeError`);
    assert.equal(err.code, 'EDGE_BAD_PARAM', query);
    assert.equal(statusOf(err), 400, query);
    assert.equal(err.details.param, param, query);
    return true;
  });
}

describe('parseParams: sizes and dpr', () => {
  it('rounds decimal sizes and folds dpr into them', () => {
    assert.equal(parse('w=150.4&h=99.5').params.w, 150);
    assert.equal(parse('w=150.4&h=99.5').params.h, 100);
    const { params } = parse('w=150.4&h=100&dpr=2');
    assert.equal(params.w, 301);
    assert.equal(params.h, 200);
  });

  it('gives one canonical for the same pixels asked three ways', () => {
    const a = parse('w=300').canonical;
    assert.equal(parse('w=300&fit=clip').canonical, a);
    assert.equal(parse('w=150&dpr=2').canonical, a);
    assert.equal(parse('dpr=2&w=150&fit=CLIP').canonical, a);
    assert.notEqual(parse('w=301').canonical, a);
    assert.ok(!a.includes('dpr'));
  });

  it('drops dpr without sizes: it does not change the key', () => {
    assert.equal(parse('dpr=3&fm=webp').canonical, parse('fm=webp').canonical);
  });

  it('rejects sizes outside 0 < v <= 8192, fractions of the source and non-numbers', () => {
    for (const q of ['w=0', 'w=-5', 'w=8193', 'w=0.5', 'w=abc', 'w=', 'w=1e3', 'w=Infinity']) assertBadParam(q, 'w');
    for (const q of ['h=0', 'h=9000', 'h=NaN']) assertBadParam(q, 'h');
    for (const q of ['w=10&dpr=0.5', 'w=10&dpr=6', 'w=10&dpr=two']) assertBadParam(q, 'dpr');
  });
});

describe('parseParams: canonical and defaults', () => {
  it('fills fit=clip and sorts keys', () => {
    assert.equal(parse('w=200&h=100&fm=webp').canonical, 'fit=clip&fm=webp&h=100&w=200');
    assert.equal(parse('').canonical, 'fit=clip');
  });

  it('leaves unknown parameters out of the canonical and of hasTransform', () => {
    assert.equal(parse('w=300&utm_source=x&version=3').canonical, parse('w=300').canonical);
    assert.equal(parse('utm_source=x').hasTransform, false);
    assert.equal(parse('s=abcdef').hasTransform, false);
    assert.equal(parse('s=abcdef').canonical, 'fit=clip');
    assert.equal(parse('w=300').hasTransform, true);
    assert.equal(parse('blur=0').hasTransform, true);
  });

  it('treats explicit defaults like absent ones', () => {
    assert.equal(parse('w=10&lossless=0&or=0&rot=0&blur=0&sharp=0&crop=').canonical, parse('w=10').canonical);
  });

  it('normalizes colours, crop lists and auto lists', () => {
    const red = parse('bg=f00').canonical;
    assert.equal(parse('bg=ff0000').canonical, red);
    assert.equal(parse('bg=%23FFFF0000').canonical, red);
    assert.equal(parse('crop=top,left').canonical, parse('crop=left,top,left').canonical);
    assert.equal(parse('auto=format&auto=compress').canonical, parse('auto=compress,format').canonical);
    assert.equal(parse('auto=format,enhance,redeye').canonical, parse('auto=format').canonical);
  });
});

describe('parseParams: each parameter', () => {
  it('fit and crop', () => {
    for (const fit of ['clip', 'crop', 'fill', 'fillmax', 'max', 'min', 'scale']) assert.equal(parse(`fit=${fit}`).params.fit, fit);
    assert.deepEqual(parse('crop=top,left').params.crop, ['left', 'top']);
    assert.deepEqual(parse('crop=faces,bottom').params.crop, ['bottom'], 'faces is accepted and ignored');
    assert.deepEqual(parse('crop=entropy').params.crop, ['entropy']);
    assert.deepEqual(parse('crop=edges').params.crop, ['edges']);
    assertBadParam('fit=cover', 'fit');
    assertBadParam('fit=facearea', 'fit');
    assertBadParam('crop=top,middle', 'crop');
  });

  it('focal point, aspect ratio and rect', () => {
    const { params } = parse('fp-x=0.25&fp-y=1&ar=16:9&rect=10,20,300,200');
    assert.equal(params.fpX, 0.25);
    assert.equal(params.fpY, 1);
    assert.deepEqual(params.ar, { w: 16, h: 9 });
    assert.deepEqual(params.rect, { x: 10, y: 20, w: 300, h: 200 });
    assert.deepEqual(parse('ar=1.5:1').params.ar, { w: 1.5, h: 1 });
    for (const v of ['-0.1', '1.01', 'x']) assertBadParam(`fp-x=${v}`, 'fp-x');
    assertBadParam('fp-y=2', 'fp-y');
    for (const v of ['16', '16:0', '0:9', 'a:b', '16:9:1', '-1:2']) assertBadParam(`ar=${v}`, 'ar');
    for (const v of ['1,2,3', '0,0,0,10', '0,0,10,0', '-1,0,10,10', '0.5,0,10,10', 'a,b,c,d']) assertBadParam(`rect=${v}`, 'rect');
  });

  it('fm, q, lossless and chromasub', () => {
    assert.equal(parse('fm=jpeg').params.fm, 'jpg');
    assert.equal(parse('fm=jpeg').canonical, parse('fm=jpg').canonical);
    for (const fm of ['pjpg', 'png', 'png8', 'webp', 'avif', 'gif', 'json']) assert.equal(parse(`fm=${fm}`).params.fm, fm);
    assertBadParam('fm=bmp', 'fm');
    assert.equal(parse('q=1').params.q, 1);
    assert.equal(parse('q=100').params.q, 100);
    for (const v of ['0', '101', '50.5', 'high']) assertBadParam(`q=${v}`, 'q');
    assert.equal(parse('lossless=1').params.lossless, true);
    assert.equal(parse('lossless=true').params.lossless, true);
    assert.equal(parse('lossless=false').params.lossless, false);
    assertBadParam('lossless=yes', 'lossless');
    assert.equal(parse('chromasub=444').params.chromasub, 444);
    assert.equal(parse('chromasub=422').params.chromasub, 422);
    assertBadParam('chromasub=411', 'chromasub');
  });

  it('colours: 3/4/6/8 hex digits, alpha first', () => {
    assert.deepEqual(parse('bg=f00').params.bg, { r: 255, g: 0, b: 0, alpha: 1 });
    assert.deepEqual(parse('bg=0f00').params.bg, { r: 255, g: 0, b: 0, alpha: 0 });
    assert.deepEqual(parse('fill-color=%2300ff00').params.fillColor, { r: 0, g: 255, b: 0, alpha: 1 });
    const c = parse('bg=800000ff').params.bg;
    assert.deepEqual({ ...c, alpha: Math.round((c?.alpha ?? 0) * 255) }, { r: 0, g: 0, b: 255, alpha: 128 });
    for (const v of ['red', '12345', 'ggg', '']) assertBadParam(`bg=${v}`, 'bg');
    assertBadParam('fill-color=fffffffff', 'fill-color');
  });

  it('blur, sharp, rot, flip, or, trim', () => {
    assert.equal(parse('blur=2000').params.blur, 2000);
    assert.equal(parse('sharp=12.4').params.sharp, 12);
    assert.equal(parse('rot=359').params.rot, 359);
    assert.equal(parse('flip=vh').params.flip, 'hv');
    assert.equal(parse('or=90').params.or, 6);
    assert.equal(parse('or=180').params.or, 3);
    assert.equal(parse('or=270').params.or, 8);
    assert.equal(parse('or=5').params.or, 5);
    assert.equal(parse('or=0').params.or, undefined);
    assert.equal(parse('trim=auto').params.trim, 'auto');
    for (const v of ['-1', '2001']) assertBadParam(`blur=${v}`, 'blur');
    assertBadParam('sharp=101', 'sharp');
    for (const v of ['360', '-90', '45.5']) assertBadParam(`rot=${v}`, 'rot');
    assertBadParam('flip=x', 'flip');
    for (const v of ['9', '45', '-1']) assertBadParam(`or=${v}`, 'or');
    assertBadParam('trim=color', 'trim');
  });

  it('names every parameter it reads, and the signature, for stripping from the origin query', () => {
    for (const name of ['w', 'h', 'dpr', 'fit', 'crop', 'fp-x', 'fp-y', 'ar', 'rect', 'fm', 'q', 'auto', 'lossless',
      'chromasub', 'bg', 'fill-color', 'blur', 'sharp', 'rot', 'flip', 'or', 'trim', 's']) {
      assert.ok(TRANSFORM_PARAM_NAMES.has(name), name);
    }
    assert.ok(!TRANSFORM_PARAM_NAMES.has('utm_source'));
  });
});
