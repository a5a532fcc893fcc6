import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { chart, markdown, type Machine } from '../../loadtest/report.js';
import { combine, ratioValue, type ScenarioResult } from '../../loadtest/scenarios.js';
import { cpuBetween, machineShareBetween, readMachineCpu, readThreadCpu } from '../../loadtest/thread-cpu.js';
import { zipfSequence } from '../../loadtest/zipf.js';
import sharp from 'sharp';

const side = (name: string, rps: number) => ({ name, requests: rps * 10, seconds: 10, rps, p50Ms: 1, p99Ms: 2, errors: 0 });

const machine: Machine = {
  date: '2026-11-27 17:00 UTC', commit: 'abc1234', cpu: 'test cpu', cores: 2, memoryGiB: 24, kernel: 'Linux', node: 'v20',
  sharp: '0.35 / 8.17', nginx: '1.22.1', loadGenerator: 'wrk', allocator: 'jemalloc', seconds: 10, rounds: 3,
};

describe('load-test report', () => {
  test('Zipf order: the same for the same seed, most popular first, about 1/k as often', () => {
    const a = zipfSequence(1000, 50_000, 1, 7);
    assert.deepEqual(a, zipfSequence(1000, 50_000, 1, 7));
    assert.notDeepEqual(a, zipfSequence(1000, 50_000, 1, 8));
    const counts = new Array(1000).fill(0);
    for (const i of a) counts[i]++;
    assert.ok(a.every((i) => i >= 0 && i < 1000));
    // Zipf(1): rank 1 twice as often as rank 2, ten times as often as rank 10 (±20 %).
    assert.ok(Math.abs(counts[0] / counts[1] - 2) < 0.4, `${counts[0]} / ${counts[1]}`);
    assert.ok(Math.abs(counts[0] / counts[9] - 10) < 2, `${counts[0]} / ${counts[9]}`);
  });

  test('the report names unmet targets and the chart draws each side against its baseline', () => {
    const results: ScenarioResult[] = [
      { id: 'hot-hit', title: 'Hot hit', setup: 'one variant', sides: [side('imgedge', 9000), side('nginx static', 40000)], target: { text: '≥ 0.80 × nginx', value: '0.23 ×', met: false }, notes: [] },
      { id: 'misses', title: 'Misses', setup: 'distinct', sides: [side('imgedge', 33), side('sharp loop', 32), side('ipx', 30)], target: { text: '≥ 0.90 × sharp', value: '1.03 ×', met: true }, notes: ['a note'] },
    ];
    const md = markdown(results, machine);
    assert.match(md, /Targets not met: Hot hit\./);
    assert.match(md, /\| Hot hit \| imgedge \| 9000 \|.*0\.23 ×\*\* ❌/);
    assert.match(md, /\*\*1\.03 ×\*\* ✅/);
    assert.match(md, /a note\./);
    const svg = chart(results);
    assert.match(svg, /^<svg /);
    // imgedge vs nginx, imgedge vs sharp, ipx vs sharp: three bars, the first red (under target)
    assert.equal(svg.match(/<rect x=/g)?.length, 3);
    assert.match(svg, />0\.23 ×</);
    assert.match(svg, /fill="#c0392b"/);
    assert.match(svg, />0\.94 ×</);
    assert.equal(markdown([results[1]!], machine).includes('Every target met.'), true);
  });

  test('the miss gap is read by thread when both sides were split, and left out otherwise', () => {
    const split = (eventLoopMs: number, libvipsMs: number, otherMs: number) => ({ cpuMs: eventLoopMs + libvipsMs + otherMs, cpuByThread: { eventLoopMs, libvipsMs, otherMs } });
    // 100 misses each: 2.5 / 45 / 4.5 ms a miss against 0.5 / 45 / 2.5
    const small = (withSplit: boolean): ScenarioResult => ({
      id: 'small-misses', title: 'Misses at small outputs', setup: 'distinct', target: { text: '≥ 0.95 × sharp', value: '0.92 ×', met: false }, notes: [],
      sides: [{ ...side('imgedge', 10), ...(withSplit ? split(250, 4500, 450) : {}) }, { ...side('sharp loop', 10), ...(withSplit ? split(50, 4500, 250) : {}) }],
    });
    const md = markdown([small(true)], machine);
    assert.match(md, /## Reading the miss ratios/);
    assert.match(md, /4\.0 ms more CPU a miss than the sharp loop in this run\n\(52\.0 against 48\.0 ms\): 0\.0 ms of it in libvips' workers,\n2\.0 ms on the event loop and 2\.0 ms on the other threads/);
    assert.doesNotMatch(markdown([small(false)], machine), /Reading the miss ratios/);
    assert.doesNotMatch(md, /cores were/);
  });

  test('a ratio is given over all rounds and at its lowest and highest round', () => {
    const run = (rps: number) => ({ requests: rps * 5, seconds: 5, rps, p50Ms: 1, p99Ms: 2, errors: 0 });
    const edge = combine('imgedge', [run(30), run(36), run(40)]);
    const sharp = combine('sharp loop', [run(40), run(40), run(40)]);
    // 106 / 120 over all; rounds 0.75, 0.90, 1.00
    assert.equal(ratioValue(edge, sharp), '0.88 × (rounds 0.75–1.00)');
    // a round with nothing finished on the baseline side has no ratio of its own
    assert.equal(ratioValue(edge, combine('sharp loop', [run(40), run(0), run(50)])), '1.18 ×');
    // one round has no spread to give
    assert.equal(ratioValue(combine('imgedge', [run(30)]), combine('sharp loop', [run(40)])), '0.75 ×');
  });

  test('the miss gap says whether both sides kept the cores busy', () => {
    const withShares = (edgeBusy: number): ScenarioResult => ({
      id: 'small-misses', title: 'Misses at small outputs', setup: 'distinct', target: { text: '≥ 0.95 × sharp', value: '0.92 ×', met: false }, notes: [],
      sides: [
        { ...side('imgedge', 10), cpuMs: 5200, cpuByThread: { eventLoopMs: 250, libvipsMs: 4500, otherMs: 450 }, machine: { busy: edgeBusy, steal: 0 } },
        { ...side('sharp loop', 10), cpuMs: 4800, cpuByThread: { eventLoopMs: 50, libvipsMs: 4500, otherMs: 250 }, machine: { busy: 0.98, steal: 0.01 } },
      ],
    });
    assert.match(markdown([withShares(0.99)], machine), /cores were 99 % busy while the edge was timed \(wrk's share included\) and 98 % while the sharp loop was, so the rates follow the CPU a miss costs/);
    // judged on the share as printed: 94.9 % reads 95 % and counts as busy
    assert.match(markdown([withShares(0.949)], machine), /cores were 95 % busy while the edge was timed \(wrk's share included\) and 98 % while the sharp loop was, so the rates/);
    assert.match(markdown([withShares(0.85)], machine), /cores were 85 % busy while the edge was timed \(wrk's share included\) and 98 % while the sharp loop was: a side that leaves cores idle/);
  });

  test('CPU by thread: the event loop, libvips workers and the rest, read from /proc', async () => {
    const before = await readThreadCpu(process.pid);
    // The event loop alone, for 300 ms of CPU (not of wall time: a busy machine may lend it less).
    const start = process.cpuUsage();
    while ((process.cpuUsage(start).user + process.cpuUsage(start).system) / 1000 < 300);
    await sharp({ create: { width: 3000, height: 3000, channels: 3, background: '#808080' } }).blur(4).jpeg().toBuffer();
    const after = await readThreadCpu(process.pid);
    const cpu = cpuBetween(before, after);
    assert.ok(cpu.eventLoopMs >= 250 && cpu.eventLoopMs < 1000, `event loop ${cpu.eventLoopMs} ms`);
    assert.ok(cpu.libvipsMs >= 50, `libvips ${cpu.libvipsMs} ms`);
  });

  test('CPU by thread: a thread that ended between the readings keeps its CPU', async () => {
    const before = await readThreadCpu(process.pid);
    // A thread that works for 300 ms of its own CPU and ends, as libvips retires an idle worker,
    // and says how much CPU it used in all (its own /proc reading, so a busy machine cannot skew it).
    const usedMs = await new Promise<number>((resolve, reject) => {
      const worker = new Worker(`
        const { readFileSync } = require('node:fs');
        const ms = () => { const s = readFileSync('/proc/thread-self/stat', 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
        const start = ms();
        while (ms() - start < 300) for (let i = 0; i < 1e5; i++);
        require('node:worker_threads').parentPort.postMessage(ms());`, { eval: true });
      let used = 0;
      worker.on('message', (ms: number) => (used = ms));
      worker.on('error', reject);
      worker.on('exit', () => resolve(used));
    });
    const cpu = cpuBetween(before, await readThreadCpu(process.pid));
    // /proc counts in 10 ms ticks: two ticks of slack
    assert.ok(usedMs >= 300 && cpu.libvipsMs >= usedMs - 20, `the ended thread used ${usedMs} ms; counted ${cpu.libvipsMs} ms (event loop ${cpu.eventLoopMs}, other ${cpu.otherMs})`);
    assert.ok(cpu.otherMs < 200, `other ${cpu.otherMs} ms`);
  });

  test("the machine's busy share covers at least what this process used of its cores", async () => {
    const before = await readMachineCpu();
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    while (performance.now() - wallStart < 400);
    const used = process.cpuUsage(cpuStart);
    const share = machineShareBetween(before, await readMachineCpu());
    // the cores /proc/stat counts (all of the host's, where a container is pinned to fewer)
    const cores = (await readFile('/proc/stat', 'utf8')).split('\n').filter((l) => /^cpu\d/.test(l)).length;
    const ours = (used.user + used.system) / 1000 / ((performance.now() - wallStart) * cores);
    // /proc/stat counts in 10 ms ticks: a few ticks of slack either way
    assert.ok(share.busy >= ours - 0.05 && share.busy <= 1, `machine busy ${share.busy}, this process ${ours}`);
    assert.ok(share.steal >= 0 && share.steal < 1);
  });
});
