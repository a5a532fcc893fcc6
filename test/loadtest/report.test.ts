import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chart, markdown, type Machine } from '../../loadtest/report.js';
import type { ScenarioResult } from '../../loadtest/scenarios.js';
import { zipfSequence } from '../../loadtest/zipf.js';

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
});
