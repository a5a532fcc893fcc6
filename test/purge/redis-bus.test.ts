import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@keyv/redis';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { LocalPurgeBus } from '../../src/purge/local-bus.js';
import { RedisPurgeBus } from '../../src/purge/redis-bus.js';
import type { PurgeRequest } from '../../src/purge/types.js';
import { startRedis } from '../helpers/redis.js';

function purge(...sourceHashes: string[]): PurgeRequest {
  return { id: randomUUID(), at: Date.now(), sourceHashes, prefixes: [], tags: [], all: false };
}

/** Polls until `done()` holds; answers the ms it took, fails after `ms`. */
async function until(done: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const started = Date.now();
  while (!(await done())) {
    if (Date.now() - started > ms) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

/** One edge node: its bus, its position file, and every purge its cache was asked to apply. */
class TestNode {
  readonly applied: PurgeRequest[] = [];
  readonly warnings: string[] = [];
  private current: RedisPurgeBus | undefined;

  constructor(
    private readonly url: string,
    private readonly positionFile: string,
    private readonly logMaxLength?: number,
  ) {}

  get bus(): RedisPurgeBus {
    assert.ok(this.current, 'node is not open');
    return this.current;
  }

  get appliedIds(): string[] {
    return this.applied.map((r) => r.id);
  }

  async open(): Promise<RedisPurgeBus> {
    this.current = await RedisPurgeBus.open({
      target: { url: this.url },
      positionFile: this.positionFile,
      logMaxLength: this.logMaxLength,
      apply: async (req) => {
        this.applied.push(req);
        return req.sourceHashes.length;
      },
      logger: { info: () => undefined, warn: (_o, m) => this.warnings.push(m ?? '') },
    });
    return this.current;
  }

  async close(): Promise<void> {
    await this.current?.close();
    this.current = undefined;
  }
}

test('Redis purge bus across two nodes on a real redis-server', async (t) => {
  const redis = await startRedis();
  if (!redis) {
    t.skip('redis-server not installed: apt-get install -y redis-server');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'imgedge-purge-'));
  const admin = createClient({ url: redis.url });
  admin.on('error', () => undefined); // it reconnects by itself after the kill below
  t.after(async () => {
    admin.destroy();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await admin.connect();

  /** Nodes on an empty purge log; closed when the subtest ends, also on failure. */
  const nodesFor = async (st: TestContext, names: string[], logMaxLength?: number): Promise<TestNode[]> => {
    await admin.del('imgedge:purges');
    const nodes = names.map((name) => new TestNode(redis.url, join(dir, st.name.slice(0, 3), name, 'purge-position.json'), logMaxLength));
    st.after(() => Promise.all(nodes.map((n) => n.close())));
    return nodes;
  };

  await t.test('(a) publish on A answers A count; B applies within 1 s; each applies once', async (st) => {
    const [a, b] = await nodesFor(st, ['a', 'b']);
    await a!.open();
    await b!.open();
    assert.equal(await a!.bus.catchUp(), 0);
    assert.equal(await b!.bus.catchUp(), 0);

    const p = purge('h1', 'h2');
    assert.equal(await a!.bus.publish(p), 2);
    const took = await until(() => b!.applied.length === 1, 1000, 'B applies the purge');
    st.diagnostic(`B applied ${took} ms after A's publish returned`);
    await sleep(200); // A's own announcement has come back by now
    assert.deepEqual(a!.appliedIds, [p.id]);
    assert.deepEqual(b!.applied, [p]);
    assert.equal(await a!.bus.catchUp(), 0, 'own purge already applied');
  });

  await t.test('(b) a node that was down applies what it missed, in order, once; a new node replays the log', async (st) => {
    const [a, b, c] = await nodesFor(st, ['a', 'b', 'c']);
    await a!.open();
    await b!.open();
    const p1 = purge('h1');
    await a!.bus.publish(p1);
    await until(() => b!.applied.length === 1, 1000, 'B applies p1');

    await b!.close();
    const p2 = purge('h2');
    const p3 = purge('h3');
    await a!.bus.publish(p2);
    await a!.bus.publish(p3);
    await b!.open();
    assert.equal(await b!.bus.catchUp(), 2);
    assert.deepEqual(b!.appliedIds, [p1.id, p2.id, p3.id]);
    assert.equal(await b!.bus.catchUp(), 0);
    assert.deepEqual(b!.appliedIds, [p1.id, p2.id, p3.id]);

    await c!.open(); // no position file yet
    assert.equal(await c!.bus.catchUp(), 3);
    assert.deepEqual(c!.appliedIds, [p1.id, p2.id, p3.id]);
  });

  await t.test('(c) a node behind a trimmed log purges everything, then follows the log again', async (st) => {
    const [a, b, c] = await nodesFor(st, ['a', 'b', 'c'], 3);
    await a!.open();
    await b!.open();
    await a!.bus.publish(purge('h0'));
    await until(() => b!.applied.length === 1, 1000, 'B applies the first purge');

    await b!.close();
    for (let i = 1; i <= 5; i++) await a!.bus.publish(purge(`h${i}`));
    assert.equal(await admin.xLen('imgedge:purges'), 3);
    await b!.open();
    assert.equal(await b!.bus.catchUp(), 1);
    assert.equal(b!.applied.length, 2);
    assert.equal(b!.applied[1]!.all, true);
    assert.ok(b!.warnings.some((w) => w.includes('trimmed')), 'the all-purge is logged');
    assert.equal(await b!.bus.catchUp(), 0);

    const next = purge('h6');
    await a!.bus.publish(next);
    await until(() => b!.applied.length === 3, 1000, 'B applies the next purge');
    assert.equal(b!.applied[2]!.id, next.id);

    await c!.open(); // no position, and the log no longer holds everything
    assert.equal(await c!.bus.catchUp(), 1);
    assert.equal(c!.applied[0]!.all, true);
  });

  await t.test('(d) without Redis purges are refused (503) and nothing is applied; after a restart they work', async (st) => {
    const [a, b] = await nodesFor(st, ['a', 'b']);
    await a!.open();
    await b!.open();
    await a!.bus.publish(purge('h1'));
    await until(() => b!.applied.length === 1, 1000, 'B applies the first purge');
    // A reads the log when its own purge's notification comes back (a moment later on a busy machine).
    await until(() => a!.bus.unverifiedBefore() === undefined, 3000, 'A has read the log');

    await redis.kill();
    let started = Date.now();
    await assert.rejects(a!.bus.publish(purge('h2')), (err) => {
      assert.ok(err instanceof EdgeError);
      assert.equal(err.code, 'EDGE_PURGE_UNAVAILABLE');
      assert.equal(statusOf(err), 503);
      return true;
    });
    const refusedIn = Date.now() - started;
    assert.ok(refusedIn < 1200, `refused in ${refusedIn} ms`);
    started = Date.now();
    assert.equal(await a!.bus.healthy(), false);
    assert.equal(await b!.bus.healthy(), false);
    assert.ok(Date.now() - started < 700, 'healthy() answers quickly while Redis is down');
    // A node that starts now opens all the same, within its deadline, out of sync.
    started = Date.now();
    const late = new TestNode(redis.url, join(dir, 'd', 'late', 'position.json'));
    const lateBus = await late.open();
    assert.ok(Date.now() - started < 3000, 'open() answers within its deadline');
    assert.ok(lateBus.unverifiedBefore()! >= started - 10, 'out of sync since its start');
    await assert.rejects(lateBus.catchUp());
    assert.equal(a!.applied.length, 1);
    assert.equal(b!.applied.length, 1);
    assert.equal(a!.bus.unverifiedBefore(), undefined, 'A read the log before the outage: its entries stay trusted');

    await redis.restart();
    const back = await until(async () => (await a!.bus.healthy()) && (await b!.bus.healthy()), 5000, 'healthy again');
    st.diagnostic(`refused in ${refusedIn} ms; healthy ${back} ms after the restart`);
    await until(() => lateBus.unverifiedBefore() === undefined, 5000, 'the late node reads the log once Redis is back');
    assert.deepEqual(late.appliedIds, [a!.appliedIds[0]], 'the late node read the log it missed');
    await late.close();
    const p = purge('h3');
    assert.equal(await a!.bus.publish(p), 1);
    await until(() => b!.applied.length === 2, 1000, 'B applies the purge after the restart');
    assert.equal(b!.applied[1]!.id, p.id);
    for (const node of [a!, b!]) {
      const outages = node.warnings.filter((w) => w.startsWith('redis unreachable')).length;
      assert.ok(outages >= 1 && outages <= 2, `one warning per connection and outage, got ${outages}`);
    }
  });
});

test('LocalPurgeBus applies on this node and answers its count', async () => {
  const applied: PurgeRequest[] = [];
  const bus = new LocalPurgeBus(async (req) => {
    applied.push(req);
    return 7;
  });
  const p = purge('h1');
  assert.equal(await bus.publish(p), 7);
  assert.deepEqual(applied, [p]);
  assert.equal(await bus.catchUp(), 0);
  assert.equal(await bus.healthy(), true);
  await bus.close();
});
