import imgixCore from '@imgix/js-core';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { signPath, verifySignature, type SigningKey } from '../../src/http/signature.js';

// js-core's typings declare `export default`, but its CommonJS build sets module.exports to the class.
const ImgixClient = imgixCore as unknown as typeof imgixCore.default;

const KEY = 'aB3dEfGh1jKlMn0p';
const IMGIX: SigningKey = { key: KEY, scheme: 'imgix-md5' };
const HMAC: SigningKey = { key: 'hmac-secret-2024', scheme: 'hmac-sha256' };
const ORIGIN = 'https://img.example.com';

/** The path and query of a URL signed by imgix's own client library. */
function imgixSigned(path: string, params: Record<string, string | number> = {}, key = KEY): string {
  const client = new ImgixClient({ domain: 'img.example.com', secureURLToken: key, includeLibraryParam: false });
  const url = client.buildURL(path, params);
  assert.ok(url.startsWith(ORIGIN));
  return url.slice(ORIGIN.length);
}

function assertBadSignature(raw: string, keys: SigningKey[] = [IMGIX]): void {
  assert.throws(() => verifySignature(raw, keys), (err: unknown) => {
    assert.ok(err instanceof EdgeError, `${raw}: expected an EdgeError, got ${String(err)}`);
    assert.equal(err.code, 'EDGE_BAD_SIGNATURE', raw);
    assert.equal(statusOf(err), 403, raw);
    return true;
  });
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

describe('verifySignature: imgix-md5 URLs built by @imgix/js-core', () => {
  const cases: [string, Record<string, string | number>][] = [
    ['/products/sku1.jpg', { w: 400, auto: 'format,compress' }],
    ['products/sku1.jpg', {}],
    ['/a b/photo one.jpg', { w: 300, h: 200, fit: 'crop', crop: 'top,left' }],
    ['/ünïcödé/ß 東京.png', { q: 75, fm: 'webp' }],
    ['/already%20encoded.jpg', { dpr: 2, w: 150 }],
    ['/odd?#:+name.jpg', { txt: 'a&b=c d', 'mark64': 'https://x.example/m.png' }],
    ['https://origin.example.com/x.jpg?v=1', { w: 100 }],
  ];
  for (const [path, params] of cases) {
    it(`accepts ${path} ${JSON.stringify(params)}`, () => {
      const raw = imgixSigned(path, params);
      assert.match(raw, /[?&]s=[0-9a-f]{32}$/);
      verifySignature(raw, [IMGIX]);
    });
  }

  it('signs exactly key + path + "?" + query without s', () => {
    const raw = imgixSigned('/a b.jpg', { w: 300, auto: 'format' });
    assert.equal(raw, `/a%20b.jpg?w=300&auto=format&s=${md5(`${KEY}/a%20b.jpg?w=300&auto=format`)}`);
    assert.equal(imgixSigned('/a.jpg'), `/a.jpg?s=${md5(`${KEY}/a.jpg`)}`);
  });

  it('accepts the signatures of a js-core srcset', () => {
    const client = new ImgixClient({ domain: 'img.example.com', secureURLToken: KEY, includeLibraryParam: false });
    const urls = client.buildSrcSet('/hero image.jpg', { auto: 'format' }).split(',\n').map((entry: string) => entry.split(' ')[0]!);
    assert.ok(urls.length > 10);
    for (const url of urls) verifySignature(url.slice(ORIGIN.length), [IMGIX]);
  });

  it('accepts the hex of s in upper case', () => {
    const raw = imgixSigned('/a.jpg', { w: 300 });
    const at = raw.lastIndexOf('s=') + 2;
    verifySignature(raw.slice(0, at) + raw.slice(at).toUpperCase(), [IMGIX]);
  });
});

describe('verifySignature: refusals', () => {
  const raw = imgixSigned('/products/sku1.jpg', { w: 400, auto: 'format' });
  const sig = raw.slice(raw.lastIndexOf('s=') + 2);

  it('refuses a tampered parameter, path or signature', () => {
    assertBadSignature(raw.replace('w=400', 'w=401'));
    assertBadSignature(raw.replace('w=400', 'w=0400'));
    assertBadSignature(raw.replace('sku1', 'sku2'));
    assertBadSignature(raw.replace('/products/', '/products//'));
    assertBadSignature(raw.replace('/sku1.jpg', '/%73ku1.jpg'));
    assertBadSignature(raw.slice(0, -1) + (raw.endsWith('0') ? '1' : '0'));
  });

  it('refuses a URL without s, or with an empty or shortened s', () => {
    assertBadSignature(raw.slice(0, raw.lastIndexOf('&s=')));
    assertBadSignature('/products/sku1.jpg');
    assertBadSignature(raw.slice(0, raw.lastIndexOf('s=') + 2));
    assertBadSignature(raw.slice(0, -2));
  });

  it('refuses a parameter after s, a second s, s in the middle, an encoded s', () => {
    assertBadSignature(`${raw}&w=2000`);
    assertBadSignature(`${raw}&`);
    assertBadSignature(`${raw}&s=${sig}`);
    assertBadSignature(raw.replace('?', `?s=${sig}&`).replace(/&s=[0-9a-f]+$/, ''));
    assertBadSignature(raw.replace('&s=', '&%73='));
    assertBadSignature(raw.replace('&s=', '&S='));
    // A second s that was itself signed is refused too: the parser would see two.
    const twoS = '/a.jpg?s=1&w=1';
    assertBadSignature(`${twoS}&s=${md5(KEY + twoS)}`);
    const encodedS = '/a.jpg?%73=1&w=1';
    assertBadSignature(`${encodedS}&s=${md5(KEY + encodedS)}`);
  });

  it('refuses an empty parameter before s (the signed string would differ)', () => {
    assertBadSignature(`/a.jpg?&s=${md5(`${KEY}/a.jpg`)}`);
  });

  it('refuses re-encoded or decoded variants of a signed URL', () => {
    const spaced = imgixSigned('/a b.jpg', { txt: 'x y' });
    verifySignature(spaced, [IMGIX]);
    assertBadSignature(spaced.replace('%20', '%2520'));
    assertBadSignature(spaced.replace('a%20b', 'a+b'));
    assertBadSignature(spaced.replace('x%20y', 'x+y'));
    const unicode = imgixSigned('/ü.jpg', { w: 1 });
    verifySignature(unicode, [IMGIX]);
    assertBadSignature(unicode.replace('%C3%BC', '%c3%bc'));
    assertBadSignature(unicode.replace('%C3%BC', 'ü'));
  });

  it('refuses characters a request line cannot carry (no MD5 length extension)', () => {
    const base = '/a.jpg?w=1';
    const glued = `${base}\x80\x00\x00\x00\x58\x00&w=2`;
    assertBadSignature(`${glued}&s=${md5(KEY + glued)}`);
    assertBadSignature(`/a b.jpg?s=${md5(`${KEY}/a b.jpg`)}`);
  });

  it('refuses a URL signed with another key, an empty key, or no keys', () => {
    assertBadSignature(imgixSigned('/a.jpg', { w: 1 }, 'another-key'));
    assertBadSignature(`/a.jpg?s=${md5('/a.jpg')}`, [{ key: '', scheme: 'imgix-md5' }]);
    assertBadSignature(raw, []);
    assertBadSignature(raw, [{ key: KEY, scheme: 'hmac-sha256' }]);
  });

  it('never throws anything but EDGE_BAD_SIGNATURE on garbage s', () => {
    const alphabet = '0123456789abcdefABCDEFxyz%&=?#+ /\\\x00\x7f\u00e9\u{1F600}';
    for (let i = 0; i < 500; i++) {
      const length = i % 3 === 0 ? [32, 64][i % 2]! : (randomBytes(1)[0]! % 80);
      const bytes = randomBytes(length);
      const s = [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
      assertBadSignature(`/a.jpg?w=1&s=${s}`, [IMGIX, HMAC]);
      assertBadSignature(`/a.jpg?s=${s}`, [IMGIX, HMAC]);
      assertBadSignature(`${s}?${s}&s=${s}`, [IMGIX, HMAC]);
    }
  });
});

describe('verifySignature: several keys and HMAC-SHA256', () => {
  it('accepts either key during a rotation', () => {
    const next: SigningKey = { key: 'next-key', scheme: 'imgix-md5' };
    const keys = [next, IMGIX];
    verifySignature(imgixSigned('/a.jpg', { w: 100 }), keys);
    verifySignature(imgixSigned('/a.jpg', { w: 100 }, 'next-key'), keys);
    assertBadSignature(imgixSigned('/a.jpg', { w: 100 }, 'retired-key'), keys);
  });

  it('mixes schemes: an HMAC key and an imgix key side by side', () => {
    const keys = [HMAC, IMGIX];
    verifySignature(signPath('/a.jpg?w=100', HMAC), keys);
    verifySignature(imgixSigned('/a.jpg', { w: 100 }), keys);
  });

  it('round-trips signPath for both schemes', () => {
    for (const key of [HMAC, IMGIX]) {
      for (const path of ['/a.jpg', '/a%20b/%C3%BC.jpg?w=300&auto=format,compress', '/x.png?fm=webp&q=80&dpr=2']) {
        const signed = signPath(path, key);
        assert.ok(signed.startsWith(path));
        verifySignature(signed, [key]);
        assertBadSignature(signed.replace('.', '_'), [key]);
      }
    }
  });

  it('signs the HMAC of the exact path and query', () => {
    const path = '/a%20b.jpg?w=300&auto=format';
    const expected = createHmac('sha256', HMAC.key).update(path).digest('hex');
    assert.equal(signPath(path, HMAC), `${path}&s=${expected}`);
    assert.equal(signPath('/a.jpg', HMAC), `/a.jpg?s=${createHmac('sha256', HMAC.key).update('/a.jpg').digest('hex')}`);
  });

  it('signPath matches js-core for imgix-md5', () => {
    const raw = imgixSigned('/a b.jpg', { w: 300, auto: 'format' });
    assert.equal(signPath(raw.slice(0, raw.lastIndexOf('&s=')), IMGIX), raw);
  });

  it('signPath refuses an unencoded URL and an empty key', () => {
    assert.throws(() => signPath('/a b.jpg', HMAC));
    assert.throws(() => signPath('/a.jpg', { key: '', scheme: 'hmac-sha256' }));
  });
});
