/**
 * The index's calls around close(): a call made once close() has begun is refused at once. It
 * used to be sent to the closing thread and wait for ever (a purge's background file deletion
 * during deleteAll hung a store's close under CPU contention).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { EntryIndex } from '../../src/cache/entry-index.js';
import { tempCacheDir } from './fixtures.js';

describe('EntryIndex around close()', () => {
  it('refuses a call made while it closes, instead of leaving it unanswered', async () => {
    const dir = await tempCacheDir();
    try {
      const index = EntryIndex.open(path.join(dir, 'index.sqlite'));
      await index.getState('clean');
      const closing = index.close();
      const late = index.present([{ sourceHash: 'a'.repeat(64), variantHash: 'b'.repeat(64) }]);
      const outcome = await Promise.race([late.then(() => 'answered', () => 'refused'), new Promise((r) => setTimeout(() => r('pending'), 5000))]);
      assert.equal(outcome, 'refused');
      await closing;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
