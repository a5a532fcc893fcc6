import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { TransformLimiter } from '../../src/transform/limiter.js';

test('the transform limiter runs N at once, queues up to M, and refuses the rest with 503 + retryAfter', async () => {
  const limiter = new TransformLimiter(2, 3);
  let running = 0;
  let peak = 0;
  const job = () =>
    limiter.run(async () => {
      peak = Math.max(peak, ++running);
      await sleep(50);
      running--;
      return 'done';
    });
  const accepted = Array.from({ length: 5 }, job);
  assert.equal(limiter.queued, 3);
  await assert.rejects(job(), (err: unknown) => err instanceof EdgeError && err.code === 'EDGE_BUSY' && statusOf(err) === 503 && err.details.retryAfter === 1);
  assert.deepEqual(await Promise.all(accepted), ['done', 'done', 'done', 'done', 'done']);
  assert.equal(peak, 2);
  // A failing job frees its turn.
  await assert.rejects(limiter.run(async () => { throw new Error('boom'); }));
  assert.equal(await job(), 'done');
});
