import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foregroundLimitFor } from '../../src/transform/background-queue.js';

test("background encodes wait for a core of this process's share: all cores for one process, one for a process per core", () => {
  // One process alone (2 transforms per core): a background encode starts while a core is free.
  assert.equal(foregroundLimitFor(4, 2), 1);
  assert.equal(foregroundLimitFor(32, 16), 15);
  // One process per core (deploy/imgedge@.service: 2 transforms each): only while it is idle, so
  // a 16-core machine does not run 16 background encodes beside 32 transforms.
  assert.equal(foregroundLimitFor(2, 16), 1);
  assert.equal(foregroundLimitFor(2, 2), 1);
  // More transforms than 2 per core never lend background work more than the machine's cores.
  assert.equal(foregroundLimitFor(64, 16), 15);
});
