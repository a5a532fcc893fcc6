import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { CacheStore } from '../../src/cache/types.js';
import { bodyFor, entryFor, keyFor, statsOf, tempCacheDir } from './fixtures.js';

/** The behaviour every CacheStore implementation must show. */
export function storeConformance(name: string, make: (dir: string) => Promise<CacheStore>): void {
  async function withStore(fn: (store: CacheStore) => Promise<void>): Promise<void> {
    const dir = await tempCacheDir();
    const store = await make(dir);
    try {
      await fn(store);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  describe(`CacheStore conformance: ${name}`, () => {
    it('returns what was put: body bytes and meta', () =>
      withStore(async (store) => {
        const key = keyFor('a');
        const entry = entryFor(key, bodyFor('a', 5000), Date.now() + 1000, ['t1', 't2']);
        assert.equal(await store.put(entry), true, 'put answers that it stored');
        const got = await store.get(key);
        assert.ok(got);
        assert.deepEqual(got.meta, entry.meta);
        assert.ok(got.body.equals(entry.body));
      }));

    it('answers undefined for a missing key', () =>
      withStore(async (store) => {
        assert.equal(await store.get(keyFor('missing')), undefined);
      }));

    it('answers undefined when the stored key string differs though the hashes match', () =>
      withStore(async (store) => {
        const key = keyFor('a');
        await store.put(entryFor(key, bodyFor('a')));
        assert.equal(await store.get({ ...key, variant: `${key.variant}|forged` }), undefined);
        assert.ok(await store.get(key), 'the genuine key still hits');
      }));

    it('deletes one entry', () =>
      withStore(async (store) => {
        const key = keyFor('a');
        await store.put(entryFor(key, bodyFor('a')));
        assert.equal(await store.delete(key), true);
        assert.equal(await store.get(key), undefined);
        assert.equal(await store.delete(key), false);
      }));

    it('deleteSource removes every variant of that source and nothing else', () =>
      withStore(async (store) => {
        const variants = ['w=100', 'w=200', 'w=300'].map((spec) => keyFor('a', spec));
        const other = keyFor('b');
        for (const key of [...variants, other]) await store.put(entryFor(key, bodyFor(key.variant)));
        assert.equal(await store.deleteSource(variants[0]!.sourceHash), 3);
        for (const key of variants) assert.equal(await store.get(key), undefined);
        assert.ok(await store.get(other));
        assert.equal((await statsOf(store)).entries, 1);
      }));

    it('an overwrite returns the new body', () =>
      withStore(async (store) => {
        const key = keyFor('a');
        await store.put(entryFor(key, bodyFor('old', 3000)));
        await store.put(entryFor(key, bodyFor('new', 2000)));
        const got = await store.get(key);
        assert.ok(got);
        assert.ok(got.body.equals(bodyFor('new', 2000)));
        assert.equal(got.meta.size, 2000);
        assert.equal((await statsOf(store)).entries, 1);
      }));

    it('still returns expired entries (freshness is the caller’s decision)', () =>
      withStore(async (store) => {
        const key = keyFor('a');
        await store.put(entryFor(key, bodyFor('a'), Date.now() - 60_000));
        const got = await store.get(key);
        assert.ok(got);
        assert.ok(got.meta.expiresAt < Date.now());
      }));

    it('stats count entries and bytes', () =>
      withStore(async (store) => {
        assert.deepEqual((await statsOf(store)), { entries: 0, bytes: 0 });
        for (let i = 0; i < 4; i++) await store.put(entryFor(keyFor(i), bodyFor(`${i}`, 1000)));
        const full = (await statsOf(store));
        assert.equal(full.entries, 4);
        assert.ok(full.bytes >= 4000, `bytes ${full.bytes} cover the bodies`);
        await store.delete(keyFor(0));
        const after = (await statsOf(store));
        assert.equal(after.entries, 3);
        assert.ok(after.bytes < full.bytes && after.bytes >= 3000);
      }));

    it('stays consistent under 50 concurrent puts and gets of distinct keys', () =>
      withStore(async (store) => {
        const keys = Array.from({ length: 50 }, (_, i) => keyFor(`c${i}`, `w=${i}`));
        const bodyOf = (i: number): Buffer => bodyFor(`c${i}`, 1000 + i * 37);
        await Promise.all(keys.map((key, i) => store.put(entryFor(key, bodyOf(i)))));
        const got = await Promise.all(keys.map((key) => store.get(key)));
        got.forEach((entry, i) => {
          assert.ok(entry, `entry ${i}`);
          assert.ok(entry.body.equals(bodyOf(i)), `entry ${i}`);
          assert.equal(entry.meta.key, keys[i]!.variant);
        });
        // Puts and gets interleaved: a get sees the old body or the new one, never anything else.
        await Promise.all(
          keys.flatMap((key, i) => [
            store.put(entryFor(key, bodyFor(`n${i}`, 900))),
            store.get(key).then((entry) => {
              assert.ok(entry?.body.equals(bodyOf(i)) || entry?.body.equals(bodyFor(`n${i}`, 900)), `entry ${i}`);
            }),
          ]),
        );
        assert.equal((await statsOf(store)).entries, 50);
      }));
  });
}
