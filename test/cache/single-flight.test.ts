import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleFlight } from '../../src/cache/single-flight.js';

describe('SingleFlight', () => {
  it('runs fn once for 20 concurrent callers of one key and gives all of them the value', async () => {
    const flights = new SingleFlight<string>();
    let calls = 0;
    const fn = async (): Promise<string> => {
      calls++;
      await sleep(10);
      return 'value';
    };
    const results = await Promise.all(Array.from({ length: 20 }, () => flights.run('k', fn)));
    assert.equal(calls, 1);
    assert.deepEqual(results, Array(20).fill('value'));
    assert.equal(flights.size, 0);
  });

  it('keeps different keys apart', async () => {
    const flights = new SingleFlight<string>();
    const [a, b] = await Promise.all([flights.run('a', async () => 'A'), flights.run('b', async () => 'B')]);
    assert.deepEqual([a, b], ['A', 'B']);
  });

  it('hands a rejection to every waiter, then runs fn again on the next call', async () => {
    const flights = new SingleFlight<number>();
    let calls = 0;
    const failing = async (): Promise<number> => {
      calls++;
      await sleep(5);
      throw new Error('origin down');
    };
    const waiters = Array.from({ length: 5 }, () => flights.run('k', failing));
    assert.equal(flights.size, 1);
    for (const w of waiters) await assert.rejects(w, /origin down/);
    assert.equal(calls, 1);
    assert.equal(flights.size, 0);
    assert.equal(await flights.run('k', async () => ++calls), 2);
  });

  it('turns a synchronous throw into a shared rejection', async () => {
    const flights = new SingleFlight<number>();
    await assert.rejects(
      flights.run('k', () => {
        throw new Error('sync');
      }),
      /sync/,
    );
    assert.equal(flights.size, 0);
  });
});
