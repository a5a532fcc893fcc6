import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, copyFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { DiskStore, INDEX_FILE } from '../../src/cache/disk-store.js';
import { makeCacheKey } from '../../src/cache/key.js';
import { bodyFor, entryFor, entryPathOf, filesUnder, keyFor, markUncleanStop, statsOf, tempCacheDir } from './fixtures.js';

const MB = 1024 * 1024;
const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false);

describe('DiskStore', () => {
  let dir: string;
  let store: DiskStore | undefined;
  const fresh = async (opts: { maxBytes?: number; sweepIntervalMs?: number; reconcileReadsPerSecond?: number } = {}): Promise<DiskStore> => {
    await store?.close();
    store = await DiskStore.open({ dir, maxBytes: 64 * MB, ...opts });
    return store;
  };

  before(async () => {
    dir = await tempCacheDir();
  });
  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores a variant at <dir>/aa/bb/cc/<rest of sourceHash>/<variantHash>.entry', async () => {
    const s = await fresh();
    const key = keyFor('path');
    await s.put(entryFor(key, bodyFor('path')));
    const h = key.sourceHash;
    const expected = path.join(dir, h.slice(0, 2), h.slice(2, 4), h.slice(4, 6), h.slice(6), `${key.variantHash}.entry`);
    assert.ok(await exists(expected));
    assert.equal(h.slice(6).length, 58);
    await s.deleteAll();
  });

  it('keeps its entries and their bytes across a restart', async () => {
    let s = await fresh();
    const keys = [1, 2, 3].map((i) => keyFor(`restart${i}`));
    for (const key of keys) await s.put(entryFor(key, bodyFor(key.variant, 4000), Date.now() + 1000, ['tag']));
    const before = (await statsOf(s));
    s = await fresh();
    assert.deepEqual((await statsOf(s)), before);
    for (const key of keys) {
      const got = await s.get(key);
      assert.ok(got);
      assert.ok(got.body.equals(bodyFor(key.variant, 4000)));
      assert.deepEqual(got.meta.tags, ['tag']);
    }
    await s.deleteAll();
  });

  it('keeps the files on disk within the byte budget, evicting the least recently used', async () => {
    // each entry file is 10 000 body bytes + a header of a few hundred: three fit (below the
    // 95 % where background eviction starts), four do not
    const s = await fresh({ maxBytes: 34_000 });
    const keys = [0, 1, 2, 3].map((i) => keyFor(`budget${i}`));
    for (const key of keys.slice(0, 3)) await s.put(entryFor(key, bodyFor(key.variant, 10_000)));
    assert.ok(await s.get(keys[0]!), 'read: now the most recent');
    await s.put(entryFor(keys[3]!, bodyFor(keys[3]!.variant, 10_000)));

    const files = await filesUnder(dir);
    const onDisk = files.reduce((sum, f) => sum + f.size, 0);
    assert.ok(onDisk <= 34_000 * 0.9, `${onDisk} bytes on disk`);
    assert.deepEqual((await statsOf(s)), { entries: files.length, bytes: onDisk });
    assert.ok(await s.get(keys[0]!), 'the recently read entry survives');
    assert.ok(await s.get(keys[3]!), 'the new entry is stored');
    assert.equal(await s.get(keys[1]!), undefined, 'the least recently used is gone');
    assert.equal(await exists(entryPathOf(dir, keys[1]!)), false);
    await s.deleteAll();
  });

  it('evicts in the background once the cache passes 95 % of its budget, down to 90 %', async () => {
    const s = await fresh({ maxBytes: 108_000 });
    const keys = Array.from({ length: 10 }, (_, i) => keyFor(`ahead${i}`));
    for (const key of keys) await s.put(entryFor(key, bodyFor(key.variant, 10_000)));
    for (let i = 0; i < 50 && (await statsOf(s)).bytes > 108_000 * 0.9; i++) await sleep(10);
    const { bytes, entries } = (await statsOf(s));
    assert.ok(bytes <= 108_000 * 0.9, `${bytes} bytes after eviction`);
    assert.equal(entries, 9);
    assert.equal(await s.get(keys[0]!), undefined, 'the oldest went first');
    assert.equal((await filesUnder(dir)).length, 9);
    await s.deleteAll();
  });

  it('does not store an entry larger than the whole budget', async () => {
    const s = await fresh({ maxBytes: 5000 });
    const key = keyFor('huge');
    assert.equal(await s.put(entryFor(key, bodyFor('huge', 6000))), false, 'put says it did not store');
    assert.equal(await s.get(key), undefined);
    assert.deepEqual(await filesUnder(dir), []);
  });

  it('sweeps expired entries and their files, keeping fresh ones', async () => {
    const s = await fresh();
    const expired = [keyFor('old1'), keyFor('old2')];
    const live = keyFor('live');
    for (const key of expired) await s.put(entryFor(key, bodyFor(key.variant), Date.now() - 1000));
    await s.put(entryFor(live, bodyFor(live.variant)));
    assert.equal(await s.sweep(), 2);
    for (const key of expired) {
      assert.equal(await s.get(key), undefined);
      assert.equal(await exists(entryPathOf(dir, key)), false);
    }
    assert.ok(await s.get(live));
    assert.equal(await s.sweep(), 0);
    await s.deleteAll();
  });

  it('sweeps on its timer', async () => {
    const s = await fresh({ sweepIntervalMs: 20 });
    const key = keyFor('timer');
    await s.put(entryFor(key, bodyFor('timer'), Date.now() + 30));
    for (let i = 0; i < 50 && (await statsOf(s)).entries > 0; i++) await sleep(20);
    assert.equal((await statsOf(s)).entries, 0);
    assert.equal(await exists(entryPathOf(dir, key)), false);
  });

  it('never returns a truncated or garbage entry, and removes it', async () => {
    const s = await fresh();
    const cut = keyFor('truncated');
    const junk = keyFor('garbage');
    await s.put(entryFor(cut, bodyFor('truncated', 8000)));
    await s.put(entryFor(junk, bodyFor('garbage', 8000)));
    const cutPath = entryPathOf(dir, cut);
    await truncate(cutPath, 4000); // the middle of the body
    await writeFile(entryPathOf(dir, junk), bodyFor('noise', 9000));
    assert.equal(await s.get(cut), undefined);
    assert.equal(await s.get(junk), undefined);
    assert.equal(await exists(cutPath), false);
    assert.equal(await exists(entryPathOf(dir, junk)), false);
    assert.equal((await statsOf(s)).entries, 0);
  });

  it('opens without reading the entries, and drops a damaged one when it is read', async () => {
    let s = await fresh();
    const good = keyFor('good');
    const cut = keyFor('cut-at-start');
    await s.put(entryFor(good, bodyFor('good', 5000)));
    await s.put(entryFor(cut, bodyFor('cut', 5000)));
    await truncate(entryPathOf(dir, cut), 3000);
    s = await fresh();
    assert.equal((await statsOf(s)).entries, 2, 'the index, not the files, says what the cache holds');
    assert.equal(await s.get(cut), undefined);
    assert.equal(await exists(entryPathOf(dir, cut)), false);
    assert.equal((await statsOf(s)).entries, 1);
    assert.ok(await s.get(good));
    await s.deleteAll();
  });

  it('after an unclean stop, serves and adopts files the index lost, drops rows whose files are gone, removes leftover temp files', async () => {
    let s = await fresh();
    const lost = [keyFor('lost1'), keyFor('lost2')];
    const vanished = keyFor('vanished');
    for (const key of [...lost, vanished]) await s.put(entryFor(key, bodyFor(key.variant, 3000)));
    const tmp = path.join(path.dirname(entryPathOf(dir, lost[0]!)), `${lost[0]!.variantHash}.1234.tmp`);
    await copyFile(entryPathOf(dir, lost[0]!), tmp);
    await s.close();
    store = undefined;
    // The index lost two rows (a crash between rename and commit) and one file is gone.
    const db = new Database(path.join(dir, INDEX_FILE));
    for (const key of lost) {
      const { size } = db.prepare('DELETE FROM entries WHERE variant = ? RETURNING size').get(Buffer.from(key.variantHash, 'hex')) as { size: number };
      db.prepare('UPDATE totals SET entries = entries - 1, bytes = bytes - ?').run(size);
    }
    db.close();
    markUncleanStop(dir);
    await rm(entryPathOf(dir, vanished));

    s = await fresh({ reconcileReadsPerSecond: 1 });
    assert.equal(s.reconcileProgress().complete, false);
    const got = await s.get(lost[0]!);
    assert.ok(got?.body.equals(bodyFor(lost[0]!.variant, 3000)), 'looked up on disk by its key while reconciling');
    s = await fresh();
    await s.settled();
    assert.equal(s.reconcileProgress().complete, true);
    assert.equal((await statsOf(s)).entries, 2);
    assert.ok(await s.get(lost[1]!), 'adopted by the reconciliation');
    assert.equal(await s.get(vanished), undefined);
    assert.equal(await exists(tmp), false);
    await s.deleteAll();
  });

  it('starts over from a damaged index file, serving and re-indexing what the files hold', async () => {
    let s = await fresh();
    const keys = [keyFor('damaged-index1'), keyFor('damaged-index2')];
    for (const key of keys) await s.put(entryFor(key, bodyFor(key.variant)));
    await s.close();
    store = undefined;
    await writeFile(path.join(dir, INDEX_FILE), bodyFor('not a database', 8192));
    s = await fresh();
    assert.ok(await s.get(keys[0]!));
    await s.settled();
    assert.equal((await statsOf(s)).entries, 2);
    assert.ok(await s.get(keys[1]!));
    await s.deleteAll();
  });

  it('a purge during reconciliation also removes matching files the index has not seen yet', async () => {
    let s = await fresh();
    const tagged = keyFor('purged-unseen');
    const kept = keyFor('kept-unseen');
    await s.put(entryFor(tagged, bodyFor('p', 2000), undefined, ['sale']));
    await s.put(entryFor(kept, bodyFor('k', 2000), undefined, ['other']));
    await s.close();
    store = undefined;
    await rm(path.join(dir, INDEX_FILE)); // a tree without its index, as after an upgrade
    s = await fresh({ reconcileReadsPerSecond: 1 });
    assert.equal(await s.deleteSelected({ tags: ['sale'], prefixes: [] }), 0, 'the index does not know it yet');
    assert.equal(await s.get(tagged), undefined, 'but it is never served');
    assert.equal(await exists(entryPathOf(dir, tagged)), false);
    s = await fresh({ reconcileReadsPerSecond: 1 }); // the recorded purge survives a restart
    const again = entryFor(tagged, bodyFor('p2', 2000), undefined, ['sale']);
    await s.put(again);
    assert.ok((await s.get(tagged))?.body.equals(again.body), 'stored after the purge: served');
    assert.ok(await s.get(kept));
    await s.deleteAll();
  });

  it('a crash after a purge removed its rows but before its files went never brings them back', async () => {
    let s = await fresh();
    const purged = keyFor('crash-purged');
    const kept = keyFor('crash-kept');
    await s.put(entryFor(purged, bodyFor('p', 2000), undefined, ['gone']));
    await s.put(entryFor(kept, bodyFor('k', 2000), undefined, ['stays']));
    await s.close();
    store = undefined;
    // What the crash leaves: the purge recorded, its row removed, its file still there.
    const db = new Database(path.join(dir, INDEX_FILE));
    db.prepare('INSERT INTO recorded_purges (at, selector) VALUES (?, ?)').run(Date.now(), JSON.stringify({ tags: ['gone'], prefixes: [] }));
    const { size } = db.prepare('DELETE FROM entries WHERE variant = ? RETURNING size').get(Buffer.from(purged.variantHash, 'hex')) as { size: number };
    db.prepare('UPDATE totals SET entries = entries - 1, bytes = bytes - ?').run(size);
    db.close();
    markUncleanStop(dir);
    s = await fresh();
    assert.equal(await s.get(purged), undefined);
    await s.settled();
    assert.equal(await exists(entryPathOf(dir, purged)), false, 'the reconciliation deleted the file');
    assert.ok(await s.get(kept));
    assert.equal((await statsOf(s)).entries, 1);
    await s.deleteAll();
  });

  it('a purge answers once the entries stop being served, and deletes their files right after', async () => {
    const s = await fresh();
    const keys = Array.from({ length: 20 }, (_, i) => keyFor(`bulk${i}`));
    for (const key of keys) await s.put(entryFor(key, bodyFor(key.variant), undefined, ['bulk']));
    assert.equal(await s.deleteSelected({ tags: ['bulk'], prefixes: [] }), 20);
    for (const key of keys) assert.equal(await s.get(key), undefined);
    for (let i = 0; i < 50 && (await filesUnder(dir)).length > 0; i++) await sleep(10);
    assert.deepEqual(await filesUnder(dir), []);
    assert.deepEqual((await statsOf(s)), { entries: 0, bytes: 0 });
  });

  it('purges by tag and by path prefix through its index', async () => {
    const s = await fresh();
    const shoes = ['a', 'b'].map((n) => makeCacheKey({ site: 'shop', path: `/shoes/${n}.jpg`, sourceQuery: '', spec: 'w=1', format: 'webp' }));
    const shirt = makeCacheKey({ site: 'shop', path: '/shirts/c.jpg', sourceQuery: '', spec: 'w=1', format: 'webp' });
    const otherSite = makeCacheKey({ site: 'blog', path: '/shoes/a.jpg', sourceQuery: '', spec: 'w=1', format: 'webp' });
    const tagged = keyFor('tagged');
    for (const key of [...shoes, shirt, otherSite]) await s.put(entryFor(key, bodyFor(key.variant)));
    await s.put(entryFor(tagged, bodyFor('tagged'), undefined, ['t1', 't2']));
    assert.equal(await s.deleteSelected({ tags: [], prefixes: [{ site: 'shop', prefix: '/shoes/' }] }), 2);
    assert.equal(await s.deleteSelected({ tags: ['t2', 'nope'], prefixes: [] }), 1);
    for (const key of [...shoes, tagged]) assert.equal(await s.get(key), undefined);
    assert.ok(await s.get(shirt));
    assert.ok(await s.get(otherSite), 'a prefix purge stays on its site');
    assert.equal(await s.deleteSelected({ tags: [], prefixes: [{ site: 'shop', prefix: '' }] }), 1, 'an empty prefix is the whole site');
    assert.equal((await statsOf(s)).entries, 1);
    await s.deleteAll();
  });

  it('never serves a half-written entry after the writer is killed mid-write', async () => {
    await store?.close();
    store = undefined;
    const crashDir = await tempCacheDir();
    const here = path.dirname(fileURLToPath(import.meta.url));
    const moduleUrl = (rel: string): string => pathToFileURL(path.resolve(here, rel)).href;
    const script = path.join(crashDir, 'writer.mjs');
    const cache = path.join(crashDir, 'cache');
    await writeFile(
      script,
      `import { createHash } from 'node:crypto';
import { DiskStore } from ${JSON.stringify(moduleUrl('../../src/cache/disk-store.js'))};
import { makeCacheKey } from ${JSON.stringify(moduleUrl('../../src/cache/key.js'))};
const store = await DiskStore.open({ dir: ${JSON.stringify(cache)}, maxBytes: 2 ** 40 });
process.stdout.write('ready\\n');
const body = (i) => Buffer.alloc(200 * 1024, createHash('sha256').update(String(i)).digest());
let next = 0;
async function writer() {
  for (;;) {
    const i = next++;
    const key = makeCacheKey({ site: 'crash', path: '/' + (i % 40), sourceQuery: '', spec: 'w=' + i, format: 'webp' });
    const b = body(i);
    await store.put({ meta: { key: key.variant, sourceHash: key.sourceHash, variantHash: key.variantHash, source: key.source,
      contentType: 'image/webp', etag: '"x"', size: b.length, createdAt: Date.now(), expiresAt: Date.now() + 60000,
      tags: [], headers: {} }, body: b });
  }
}
await Promise.all([writer(), writer(), writer(), writer()]);
`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', () => reject(new Error('writer exited before it was ready')));
    });
    await sleep(300);
    child.kill('SIGKILL');
    await exited;

    const reopened = await DiskStore.open({ dir: cache, maxBytes: 2 ** 40 });
    await reopened.settled();
    try {
      let served = 0;
      for (let i = 0; i < 20_000; i++) {
        const key = makeCacheKey({ site: 'crash', path: `/${i % 40}`, sourceQuery: '', spec: `w=${i}`, format: 'webp' });
        const got = await reopened.get(key);
        if (!got) continue;
        served++;
        const expected = Buffer.alloc(200 * 1024, createHash('sha256').update(String(i)).digest());
        assert.equal(sha256(got.body), sha256(expected), `entry ${i} is whole`);
      }
      assert.ok(served > 0, 'the writer got some entries written');
      assert.equal(served, (await statsOf(reopened)).entries);
      assert.equal((await filesUnder(cache)).filter((f) => f.path.endsWith('.tmp')).length, 0);
    } finally {
      await reopened.close();
      await rm(crashDir, { recursive: true, force: true });
    }
  });
});

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}
