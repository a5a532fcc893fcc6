import { DiskStore } from '../../src/cache/disk-store.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import { TieredStore } from '../../src/cache/tiered-store.js';
import { storeConformance } from './conformance.js';

const MAX_BYTES = 64 * 1024 * 1024;

storeConformance('DiskStore', (dir) => DiskStore.open({ dir, maxBytes: MAX_BYTES }));
storeConformance('MemoryStore', async () => new MemoryStore({ maxBytes: MAX_BYTES }));
storeConformance('TieredStore', async (dir) =>
  new TieredStore(new MemoryStore({ maxBytes: MAX_BYTES / 4 }), await DiskStore.open({ dir, maxBytes: MAX_BYTES })),
);
