import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DiskStore } from '../../src/cache/disk-store.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import { TieredStore } from '../../src/cache/tiered-store.js';
import { bodyFor, entryFor, keyFor, statsOf, tempCacheDir } from './fixtures.js';

describe('TieredStore', () => {
  let dir: string;
  let memory: MemoryStore;
  let disk: DiskStore;
  let tiered: TieredStore;

  beforeEach(async () => {
    dir = await tempCacheDir();
    memory = new MemoryStore({ maxBytes: 1024 * 1024 });
    disk = await DiskStore.open({ dir, maxBytes: 16 * 1024 * 1024 });
    tiered = new TieredStore(memory, disk);
  });
  afterEach(async () => {
    await tiered.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('promotes a disk hit into memory', async () => {
    const key = keyFor('promote');
    await disk.put(entryFor(key, bodyFor('promote')));
    assert.equal(await memory.get(key), undefined);
    assert.ok(await tiered.get(key));
    assert.ok(await memory.get(key));
  });

  it('keeps a body larger than an eighth of the memory tier on disk only', async () => {
    const big = keyFor('big-source');
    const small = keyFor('small-variant');
    await tiered.put(entryFor(big, bodyFor('big', 200 * 1024)));
    await tiered.put(entryFor(small, bodyFor('small', 10 * 1024)));
    assert.equal(await memory.get(big), undefined);
    assert.equal((await tiered.get(big))?.body.length, 200 * 1024);
    assert.ok(await memory.get(small));
  });

  it('stops serving from memory what the disk sweeper removed', async () => {
    const key = keyFor('swept');
    await tiered.put(entryFor(key, bodyFor('swept'), Date.now() - 1000));
    assert.ok(await memory.get(key));
    assert.equal(await disk.sweep(), 1);
    assert.equal(await tiered.get(key), undefined);
    assert.equal(await memory.get(key), undefined);
  });

  it('purges by tag in both tiers, counting each variant once', async () => {
    const tagged = [keyFor('t1'), keyFor('t2')];
    const other = keyFor('t3');
    for (const key of tagged) await tiered.put(entryFor(key, bodyFor(key.variant), undefined, ['product-1']));
    await tiered.put(entryFor(other, bodyFor(other.variant), undefined, ['product-2']));
    assert.equal(await tiered.deleteSelected({ tags: ['product-1'], prefixes: [] }), 2);
    for (const key of tagged) assert.equal(await tiered.get(key), undefined);
    assert.ok(await tiered.get(other));
    assert.equal(await tiered.deleteAll(), 1);
    assert.deepEqual((await statsOf(tiered)), { entries: 0, bytes: 0 });
  });
});
