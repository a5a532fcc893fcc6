import assert from 'node:assert/strict';
import type dns from 'node:dns';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import type { LookupFunction } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { HttpOrigin } from '../../src/origin/http-origin.js';
import { checkLiteralHost, guardedLookup, isNonPublicAddress, nextHop, type RedirectPolicy } from '../../src/origin/ssrf.js';
import { TestOrigin } from '../helpers/origin.js';

const LIMITS = { connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, maxSourceBytes: 1 << 20 };

const isCode = (code: string) => (err: unknown) => (err as { code?: string }).code === code;

describe('isNonPublicAddress', () => {
  const nonPublic = [
    '127.0.0.1', '127.255.255.254', '0.0.0.0', '0.1.2.3', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1',
    '169.254.169.254', '100.64.0.1', '100.127.255.255', '224.0.0.1', '239.255.255.250', '255.255.255.255', '240.0.0.1',
    '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '192.0.0.8',
    '::', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '::ffff:8.8.8.8', '::127.0.0.1',
    '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::10.0.0.1', '64:ff9b:1::808:808', '2002:7f00:1::', '2002:c0a8:101::1',
    '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:db8::1', 'fe80::1', 'fe80::1%eth0', 'fc00::1', 'fd12::1',
    'ff02::1', 'fec0::1', '100::1', 'not-an-ip', '127.1',
  ];
  const isPublic = [
    '8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '100.128.0.1', '100.63.255.255', '169.255.0.1', '11.0.0.1',
    '192.169.0.1', '223.255.255.255', '2606:4700::1111', '2a00:1450:4001:81c::200e', '64:ff9b::808:808', '64:ff9b::8.8.8.8',
    '2002:808:808::1',
  ];
  test(`${nonPublic.length} non-public addresses are refused`, () => {
    for (const a of nonPublic) assert.equal(isNonPublicAddress(a), true, a);
  });
  test(`${isPublic.length} public addresses pass`, () => {
    for (const a of isPublic) assert.equal(isNonPublicAddress(a), false, a);
  });
});

/** A resolver that answers each call with the next list of addresses (a rebinding DNS server). */
function fakeResolver(...answers: string[][]): { resolve: typeof dns.lookup; calls: number } {
  const state = { calls: 0, resolve: undefined as unknown as typeof dns.lookup };
  state.resolve = ((_host: string, _opts: dns.LookupOptions, cb: (err: Error | null, a: dns.LookupAddress[]) => void) => {
    const list = answers[Math.min(state.calls++, answers.length - 1)]!;
    cb(null, list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  }) as unknown as typeof dns.lookup;
  return state;
}

function lookupOnce(lookup: LookupFunction, host: string, all = false): Promise<string | dns.LookupAddress[]> {
  return new Promise((resolve, reject) => lookup(host, { all }, (err, address) => (err ? reject(err) : resolve(address))));
}

describe('guardedLookup', () => {
  test('a name that rebinds to loopback is refused on the lookup that connects', async () => {
    const dnsServer = fakeResolver(['93.184.216.34'], ['127.0.0.1']);
    const lookup = guardedLookup(new Set(), dnsServer.resolve);
    assert.equal(await lookupOnce(lookup, 'rebind.example'), '93.184.216.34');
    await assert.rejects(lookupOnce(lookup, 'rebind.example'), (err) => err instanceof EdgeError && err.code === 'EDGE_FORBIDDEN_SOURCE' && statusOf(err) === 403);
  });

  test('one non-public address among public ones refuses the name', async () => {
    const lookup = guardedLookup(new Set(), fakeResolver(['1.1.1.1', '::ffff:169.254.169.254']).resolve);
    await assert.rejects(lookupOnce(lookup, 'mixed.example', true), isCode('EDGE_FORBIDDEN_SOURCE'));
  });

  test('a trusted name may resolve to loopback or private addresses, answering in the shape asked', async () => {
    const lookup = guardedLookup(new Set(['origin.internal']), fakeResolver(['10.0.0.7', '127.0.0.1']).resolve);
    assert.equal(await lookupOnce(lookup, 'origin.internal'), '10.0.0.7');
    assert.deepEqual(await lookupOnce(lookup, 'origin.internal', true), [{ address: '10.0.0.7', family: 4 }, { address: '127.0.0.1', family: 4 }]);
  });

  test('trust is by exact name: another name with the same private address is refused', async () => {
    const lookup = guardedLookup(new Set(['origin.internal']), fakeResolver(['10.0.0.7']).resolve);
    await assert.rejects(lookupOnce(lookup, 'evil.example'), isCode('EDGE_FORBIDDEN_SOURCE'));
    await assert.rejects(lookupOnce(lookup, 'origin.internal.evil.example'), isCode('EDGE_FORBIDDEN_SOURCE'));
  });

  test('a trusted name never reaches unspecified or link-local addresses (metadata service)', async () => {
    for (const address of ['169.254.169.254', '0.0.0.0', '::', 'fe80::1']) {
      const lookup = guardedLookup(new Set(['origin.internal']), fakeResolver([address]).resolve);
      await assert.rejects(lookupOnce(lookup, 'origin.internal'), isCode('EDGE_FORBIDDEN_SOURCE'), address);
    }
  });

  test('DNS errors pass through unchanged', async () => {
    const failing = ((_h: string, _o: unknown, cb: (err: Error) => void) => cb(Object.assign(new Error('nope'), { code: 'ENOTFOUND' }))) as unknown as typeof dns.lookup;
    await assert.rejects(lookupOnce(guardedLookup(new Set(), failing), 'missing.example'), isCode('ENOTFOUND'));
  });
});

describe('checkLiteralHost', () => {
  test('IP literals in every spelling are seen normalized and refused', () => {
    for (const url of ['http://[::ffff:127.0.0.1]/', 'http://0x7f000001/', 'http://2130706433/', 'http://127.1/', 'http://0/', 'http://[::]/', 'http://169.254.169.254/', 'http://[fe80::1]/']) {
      assert.throws(() => checkLiteralHost(new URL(url), new Set()), isCode('EDGE_FORBIDDEN_SOURCE'), url);
    }
  });
  test('a configured literal, a public literal and names pass (names are checked at connect time)', () => {
    checkLiteralHost(new URL('http://127.0.0.1:8080/a'), new Set(['127.0.0.1']));
    checkLiteralHost(new URL('http://[::1]/a'), new Set(['[::1]']));
    checkLiteralHost(new URL('http://8.8.8.8/a'), new Set());
    checkLiteralHost(new URL('http://localhost/a'), new Set());
  });
});

describe('nextHop', () => {
  const policy: RedirectPolicy = { allowedOrigins: new Set(['https://img.example.com:443', 'https://cdn.example.net:443']), maxRedirects: 3 };
  const current = new URL('https://img.example.com/photos/a.jpg');
  const forbidden = isCode('EDGE_FORBIDDEN_SOURCE');

  test('a relative Location stays on the origin', () => {
    assert.equal(nextHop(current, 'b.jpg', 1, policy).href, 'https://img.example.com/photos/b.jpg');
    assert.equal(nextHop(current, '/x/c.jpg?v=2#frag', 1, policy).href, 'https://img.example.com/x/c.jpg?v=2');
  });
  test('an allowed second origin, its default port written out or not', () => {
    assert.equal(nextHop(current, 'https://cdn.example.net:443/a.jpg', 2, policy).href, 'https://cdn.example.net/a.jpg');
  });
  test('another host, another port, another scheme are refused', () => {
    assert.throws(() => nextHop(current, 'https://evil.example/a.jpg', 1, policy), forbidden);
    assert.throws(() => nextHop(current, 'https://img.example.com:8443/a.jpg', 1, policy), forbidden);
    assert.throws(() => nextHop(current, 'http://img.example.com/a.jpg', 1, policy), forbidden);
    assert.throws(() => nextHop(current, 'https://img.example.com.evil.example/a.jpg', 1, policy), forbidden);
    assert.throws(() => nextHop(current, 'https://img.example.com./a.jpg', 1, policy), forbidden);
    assert.throws(() => nextHop(current, '//169.254.169.254/latest/meta-data/', 1, policy), forbidden);
    assert.throws(() => nextHop(current, 'file:///etc/passwd', 1, policy), forbidden);
  });
  test('http to https of the same host passes once that origin is allowed', () => {
    const plain = new URL('http://img.example.com/a.jpg');
    assert.equal(nextHop(plain, 'https://img.example.com/a.jpg', 1, policy).href, 'https://img.example.com/a.jpg');
  });
  test('too many hops, no Location or a broken one is an origin error', () => {
    assert.throws(() => nextHop(current, '/a.jpg', 4, policy), (err) => err instanceof EdgeError && err.code === 'EDGE_ORIGIN_STATUS' && statusOf(err) === 502);
    assert.throws(() => nextHop(current, undefined, 1, policy), isCode('EDGE_ORIGIN_STATUS'));
    assert.throws(() => nextHop(current, 'http://[::1', 1, policy), isCode('EDGE_ORIGIN_STATUS'));
  });
});

describe('HttpOrigin end to end: redirects never reach what the site does not allow', () => {
  let a: TestOrigin; // the configured origin
  let b: TestOrigin; // another service on loopback
  let c: TestOrigin; // a second origin the site allows
  const connects: string[] = [];
  const onConnect = (message: unknown) => {
    const { hostname, port } = (message as { connectParams: { hostname: string; port: string } }).connectParams;
    connects.push(`${hostname}:${port}`);
  };

  before(async () => {
    [a, b, c] = await Promise.all([TestOrigin.start(), TestOrigin.start(), TestOrigin.start()]);
    const portB = new URL(b.url).port;
    const portC = new URL(c.url).port;
    const redirect = (location: string, status = 302) => ({ status, headers: { location }, body: 'moved' });
    a.set('/to-b', redirect(`http://127.0.0.1:${portB}/secret`));
    a.set('/to-b-mapped', redirect(`http://[::ffff:127.0.0.1]:${portB}/secret`));
    a.set('/to-b-via-hop', redirect('/hop', 301));
    a.set('/hop', redirect(`http://localhost:${portB}/secret`, 307));
    a.set('/to-metadata', redirect('http://169.254.169.254/latest/meta-data/'));
    a.set('/to-c', redirect(`http://localhost:${portC}/img.png`, 308));
    a.set('/loop', redirect('/loop'));
    b.set('/secret', { body: 'internal secret' });
    c.set('/img.png', { body: 'png bytes', headers: { 'content-type': 'image/png' } });
    diagnostics.subscribe('undici:client:beforeConnect', onConnect);
  });
  after(async () => {
    diagnostics.unsubscribe('undici:client:beforeConnect', onConnect);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  const originFor = () => new HttpOrigin(a.url, LIMITS, { allowedOrigins: [`http://localhost:${new URL(c.url).port}`] });
  const forbidden = (err: unknown) => err instanceof EdgeError && err.code === 'EDGE_FORBIDDEN_SOURCE' && statusOf(err) === 403;

  test('a redirect to another loopback service fetches nothing from it, however it is spelled', async () => {
    const origin = originFor();
    try {
      await assert.rejects(origin.fetch('/to-b'), forbidden);
      await assert.rejects(origin.fetch('/to-b-mapped'), forbidden);
      await assert.rejects(origin.fetch('/to-b-via-hop'), forbidden);
    } finally {
      await origin.close();
    }
    assert.equal(a.count('/hop'), 1);
    assert.equal(b.total, 0);
    assert.ok(!connects.some((c) => c.endsWith(`:${new URL(b.url).port}`)), connects.join(' '));
  });

  test('a redirect to 169.254.169.254 is refused without a connection attempt', async () => {
    const origin = originFor();
    const started = Date.now();
    try {
      await assert.rejects(origin.fetch('/to-metadata'), forbidden);
    } finally {
      await origin.close();
    }
    assert.ok(Date.now() - started < 1000);
    assert.ok(!connects.some((c) => c.startsWith('169.254.')), connects.join(' '));
  });

  test('a redirect to an allowed second origin is followed (through the guarded lookup)', async () => {
    const origin = originFor();
    try {
      const res = await origin.fetch('/to-c');
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'png bytes');
    } finally {
      await origin.close();
    }
    assert.equal(c.count('/img.png'), 1);
  });

  test('a redirect loop stops after maxRedirects hops', async () => {
    const origin = new HttpOrigin(a.url, LIMITS, { maxRedirects: 2 });
    try {
      await assert.rejects(origin.fetch('/loop'), (err) => err instanceof EdgeError && err.code === 'EDGE_ORIGIN_STATUS' && statusOf(err) === 502);
    } finally {
      await origin.close();
    }
    assert.equal(a.count('/loop'), 3);
  });

  test('a configured origin on loopback named by host name is trusted', async () => {
    const origin = new HttpOrigin(c.url.replace('127.0.0.1', 'localhost'), LIMITS);
    try {
      assert.equal((await origin.fetch('/img.png')).status, 200);
    } finally {
      await origin.close();
    }
  });
});

describe('the guard inside the agents', () => {
  let b: TestOrigin;
  before(async () => {
    b = await TestOrigin.start();
    b.set('/secret', { body: 'internal secret' });
  });
  after(() => b.close());

  test('undici refuses an untrusted name that resolves to loopback, before connecting', async () => {
    const agent = new Agent({ connect: { lookup: guardedLookup(new Set()) } });
    try {
      await assert.rejects(request(b.url.replace('127.0.0.1', 'localhost') + '/secret', { dispatcher: agent }), forbidden403);
    } finally {
      await agent.close();
    }
    assert.equal(b.total, 0);
  });

  test('http.Agent (the passthrough proxy) honours the same lookup', async () => {
    const agent = new http.Agent({ lookup: guardedLookup(new Set()) });
    const error = await new Promise<unknown>((resolve) => {
      http.get(b.url.replace('127.0.0.1', 'localhost') + '/secret', { agent }, () => resolve(null)).on('error', resolve);
    });
    agent.destroy();
    assert.ok(forbidden403(error), String(error));
    assert.equal(b.total, 0);
  });

  function forbidden403(err: unknown): boolean {
    return err instanceof EdgeError && err.code === 'EDGE_FORBIDDEN_SOURCE' && statusOf(err) === 403;
  }
});
