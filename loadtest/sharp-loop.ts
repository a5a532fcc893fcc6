/**
 * The miss baseline: sharp itself doing what the edge does for `?w=<w>&fm=jpg&q=<q>` (or fm=webp) —
 * decode with auto-orientation, resize to the width, sRGB, the edge's settings (src/transform/encode.ts)
 * — over the same (source, width) list, `concurrency` at a time, for `seconds`. Prints one JSON line.
 * Usage: sharp-loop.js <file.json: {jobs: [{file, width}], concurrency, seconds, quality}>
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { LoadResult } from './drive.js';
import { cpuBetween, machineShareBetween, readMachineCpu, readThreadCpu, type MachineCpu } from './thread-cpu.js';

interface Args { jobs: { file: string; width: number }[]; concurrency: number; seconds: number; quality: number; format?: 'jpeg' | 'webp' }
const args = JSON.parse(await readFile(process.argv[2] ?? '', 'utf8')) as Args;
sharp.cache(false); // as the edge runs it

const sources = new Map<string, Buffer>();
for (const { file } of args.jobs) if (!sources.has(file)) sources.set(file, await readFile(file));

const latencies: number[] = [];
let next = 0;
// Counted as wrk counts the edge: the jobs finished inside the window (their number and their
// latencies), over the window. Jobs in flight at its end still run: their CPU is read after them,
// and divided by every job.
let jobsDone = 0;
// CPU is read over the timed loop only, as it is for the edge (its startup is not a miss's).
const cpuBefore = await readThreadCpu(process.pid);
const machineBefore = await readMachineCpu();
const started = performance.now();
const deadline = started + args.seconds * 1000;
const machineInWindow = new Promise<MachineCpu>((resolve) => setTimeout(() => resolve(readMachineCpu()), args.seconds * 1000));
async function worker(): Promise<void> {
  while (performance.now() < deadline) {
    const job = args.jobs[next++ % args.jobs.length]!;
    const t = performance.now();
    const img = sharp(sources.get(job.file)!, { failOn: 'error', autoOrient: true }).resize({ width: job.width }).toColourspace('srgb');
    if (args.format === 'webp') img.webp({ quality: args.quality, alphaQuality: Math.max(args.quality, 80), effort: 4, smartSubsample: false });
    else img.jpeg({ quality: args.quality, chromaSubsampling: '4:2:0', trellisQuantisation: true, overshootDeringing: true, quantisationTable: 3, optimiseScans: false, progressive: false });
    await img.toBuffer();
    const done = performance.now();
    if (done <= deadline) latencies.push(done - t);
    jobsDone++;
  }
}
await Promise.all(Array.from({ length: args.concurrency }, worker));
const cpuAfter = await readThreadCpu(process.pid);
const machine = machineShareBetween(machineBefore, await machineInWindow);
latencies.sort((a, b) => a - b);
// no job finished inside the window: no latency to give (0, as wrk gives)
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
const result: LoadResult = {
  requests: latencies.length, seconds: args.seconds, rps: latencies.length / args.seconds, p50Ms: at(0.5), p99Ms: at(0.99), errors: 0,
  cpuMs: cpuAfter.totalMs - cpuBefore.totalMs, cpuByThread: cpuBetween(cpuBefore, cpuAfter), cpuRequests: jobsDone, machine,
};
process.stdout.write(JSON.stringify(result) + '\n');
