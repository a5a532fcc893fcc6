/** The benchmark scenarios (issue 7): each runs the edge and its baseline side by side. */
import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { countedLoad, cpuPerRequest, timedLoad, type LoadResult } from './drive.js';
import type { FixtureSet } from './fixtures.js';
import { edgeConfig, edgeCounters, memoryOf, sharpEnv, startBareNode, startEdge, startIpx, startStaticNginx, type Child, type CountingOrigin } from './servers.js';
import { cpuBetween, machineShareBetween, percentOf, readMachineCpu, readThreadCpu, type CpuByThread } from './thread-cpu.js';
import { zipfSequence, seededRandom } from './zipf.js';
import { makeTestCert, renderNginx, startNginx } from '../test/helpers/nginx.js';
import { freePort } from '../test/helpers/processes.js';

const run = promisify(execFile);

const MiB = 1024 ** 2;
/** The deployed stack's name in the tables. */
const FRONTED = 'nginx/imgedge.conf → imgedge';

/** Browsers that take WebP but not AVIF: every hit scenario asks with this. */
export const ACCEPT_WEBP = { Accept: 'image/webp,*/*' };

export interface Side extends LoadResult {
  name: string;
  /** each timed run's rate, in the order the rounds ran (the sides take turns within a round) */
  roundsRps?: number[];
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** what was asked, in words */
  setup: string;
  sides: Side[];
  /** the target, when the scenario has one */
  target?: { text: string; value: string; met: boolean };
  notes: string[];
}

export interface BenchContext {
  fixtures: FixtureSet;
  origin: CountingOrigin;
  workDir: string;
  seconds: number;
  rounds: number;
  log(line: string): void;
}

/** How long misses still in flight when the load generator stops take to finish, at most. */
const IN_FLIGHT_SETTLE_MS = 1000;

/**
 * Runs each side `rounds` times, interleaved (A B A B), and sums them, so drift hits both alike.
 * A side with `finished` (the server's own count of the work it has finished) has its CPU read
 * once the work still in flight when the load stops is done, and divided by that count: wrk stops
 * with misses in flight, whose CPU would otherwise land in this side's window uncounted and the
 * rest of it in the next side's.
 */
async function sideBySide(ctx: BenchContext, sides: { name: string; load: () => Promise<LoadResult>; pid?: number; finished?: () => Promise<number> }[], rounds = ctx.rounds): Promise<Side[]> {
  const runs = new Map<string, LoadResult[]>(sides.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const side of sides) {
      const finishedBefore = side.finished ? await side.finished() : 0;
      const cpuBefore = side.pid === undefined ? undefined : await readThreadCpu(side.pid);
      const machineBefore = await readMachineCpu();
      const result = await side.load();
      result.machine ??= machineShareBetween(machineBefore, await readMachineCpu());
      if (side.finished) await new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_SETTLE_MS));
      if (cpuBefore) {
        const cpuAfter = await readThreadCpu(side.pid!);
        result.cpuMs = cpuAfter.totalMs - cpuBefore.totalMs;
        result.cpuByThread = cpuBetween(cpuBefore, cpuAfter);
      }
      if (side.finished) result.cpuRequests = (await side.finished()) - finishedBefore;
      ctx.log(`  ${side.name}: ${Math.round(result.rps)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.errors} errors`);
      runs.get(side.name)!.push(result);
    }
  }
  return sides.map(({ name }) => combine(name, runs.get(name)!));
}

/** One side's runs as one: requests and time summed, latencies averaged, CPU summed when every run has it. */
export function combine(name: string, results: LoadResult[]): Side {
  const requests = results.reduce((n, r) => n + r.requests, 0);
  const seconds = results.reduce((n, r) => n + r.seconds, 0);
  const mean = (f: (r: LoadResult) => number) => results.reduce((n, r) => n + f(r), 0) / results.length;
  const cpuMs = results.every((r) => r.cpuMs !== undefined) ? results.reduce((n, r) => n + r.cpuMs!, 0) : undefined;
  const split = results.every((r) => r.cpuByThread !== undefined) ? results.map((r) => r.cpuByThread!) : undefined;
  const cpuRequests = results.every((r) => r.cpuRequests !== undefined) ? results.reduce((n, r) => n + r.cpuRequests!, 0) : undefined;
  const sum = (f: (c: CpuByThread) => number) => split!.reduce((n, c) => n + f(c), 0);
  const shares = results.every((r) => r.machine !== undefined) ? results.map((r) => r.machine!) : undefined;
  return {
    name, requests, seconds, rps: requests / seconds, roundsRps: results.map((r) => r.rps), p50Ms: mean((r) => r.p50Ms), p99Ms: mean((r) => r.p99Ms), errors: results.reduce((n, r) => n + r.errors, 0),
    ...(cpuMs !== undefined ? { cpuMs } : {}),
    ...(cpuRequests !== undefined ? { cpuRequests } : {}),
    ...(split ? { cpuByThread: { eventLoopMs: sum((c) => c.eventLoopMs), libvipsMs: sum((c) => c.libvipsMs), otherMs: sum((c) => c.otherMs) } } : {}),
    ...(shares ? { machine: { busy: shares.reduce((n, m) => n + m.busy, 0) / shares.length, steal: shares.reduce((n, m) => n + m.steal, 0) / shares.length } } : {}),
  };
}

const ratio = (a: Side, b: Side) => a.rps / b.rps;

/**
 * A ratio as the report gives it: over all rounds, with the lowest and highest of the rounds taken
 * one by one (each round runs the sides in turn), so a target missed or met by less than the
 * machine's round-to-round noise reads as such.
 */
export function ratioValue(a: Side, b: Side): string {
  const [ra, rb] = [a.roundsRps, b.roundsRps];
  const paired = ra !== undefined && rb !== undefined && ra.length === rb.length && !rb.includes(0);
  return ratioWithRounds(ratio(a, b), paired ? ra.map((x, i) => x / rb[i]!) : []);
}

/** `all` as "0.88 × (rounds 0.75–1.00)": the lowest and highest of the rounds' own ratios, when there are two or more. */
export function ratioWithRounds(all: number, eachRound: number[]): string {
  const text = `${all.toFixed(2)} ×`;
  if (eachRound.length < 2) return text;
  return `${text} (rounds ${Math.min(...eachRound).toFixed(2)}–${Math.max(...eachRound).toFixed(2)})`;
}

/** The edge's own count of the transforms it has finished (its transform-time histogram's count). */
const transformsFinished = (edge: Child) => async () => (await edgeCounters(edge.url)).get('imgedge_transform_seconds_count') ?? 0;

/** CPU per request by thread group, side a against side b, as a report note (none unless both were split). */
function cpuByThreadNote(a: Side, b: Side): string[] {
  if (!a.cpuByThread || !b.cpuByThread) return [];
  const pair = (f: (c: CpuByThread) => number) => `${cpuPerRequest(a, f(a.cpuByThread!)).toFixed(1)} / ${cpuPerRequest(b, f(b.cpuByThread!)).toFixed(1)} ms`;
  return [`CPU per miss by thread, ${a.name} / ${b.name}: event loop ${pair((c) => c.eventLoopMs)}, libvips workers ${pair((c) => c.libvipsMs)}, other threads (libuv's pool, which also drives each pipeline and its encoder; V8; the cache index) ${pair((c) => c.otherMs)}`];
}

/** Whether the cores were kept busy while each side was timed (the rate can follow CPU per miss only if they were). */
function machineNote(a: Side, b: Side): string[] {
  if (!a.machine || !b.machine) return [];
  return [`The machine's cores busy while timed, ${a.name} / ${b.name}: ${percentOf(a.machine.busy)} / ${percentOf(b.machine.busy)} % (all processes, the load generator's included; taken by the hypervisor: ${percentOf(a.machine.steal)} / ${percentOf(b.machine.steal)} %)`];
}

const kib = (b: Buffer) => (b.length / 1024).toFixed(0);

/** GETs `paths` one by one; returns the bodies (the edge's own bytes for nginx to serve). */
export async function fetchAll(base: string, paths: string[], headers: Record<string, string>): Promise<Buffer[]> {
  const bodies: Buffer[] = [];
  for (const p of paths) {
    const res = await fetch(base + p, { headers });
    if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    bodies.push(Buffer.from(await res.arrayBuffer()));
  }
  return bodies;
}

export async function writeBaselineFiles(root: string, names: string[], bodies: Buffer[]): Promise<void> {
  await mkdir(root, { recursive: true });
  // nginx's worker runs as an unprivileged user: it must be able to read the files and walk to them
  await chmod(root, 0o755);
  await chmod(path.dirname(root), 0o755);
  await Promise.all(names.map((n, i) => writeFile(path.join(root, n), bodies[i]!)));
}

/** The hot set: 20 sources × 50 widths, asked for with auto=format like a responsive page does. */
export function hotSetPaths(fixtures: FixtureSet): string[] {
  const paths: string[] = [];
  for (let w = 200; w < 700; w += 10) for (let s = 0; s < fixtures.hot; s++) paths.push(`/hot/${s}.jpg?w=${w}&auto=format`);
  return paths;
}

/**
 * nginx/imgedge.conf as shipped (micro-cache on), one worker, in front of `edge`: what a browser
 * meets in a deployment. Undefined when nginx or openssl is missing.
 */
async function startFront(ctx: BenchContext, edge: Child): Promise<{ url: string; stop(): Promise<void> } | undefined> {
  const prefix = path.join(ctx.workDir, `front-${Date.now()}`);
  const [port, tlsPort] = [await freePort(), await freePort()];
  const cert = await makeTestCert(path.join(prefix, 'tls'));
  if (!cert) return undefined;
  const conf = await renderNginx({
    nodes: [edge.url.replace('http://', '')], listenPort: port, tlsPort, ...cert, prefix, workers: 1,
    allowNets: ['127.0.0.1'], rateLimitExempt: ['127.0.0.1'],
  });
  const nginx = await startNginx(conf);
  return nginx && { url: `http://127.0.0.1:${port}`, stop: () => nginx.stop() };
}

/** The hot hit's side without the lines of fresh hits. */
const NO_HIT_LINES = 'imgedge, IMGEDGE_LOG_HITS=0';

export async function hotHit(ctx: BenchContext, edge: Child): Promise<ScenarioResult> {
  ctx.log('hot hit: one variant, 32 connections');
  const variant = '/hot/0.jpg?w=600&auto=format';
  const [body] = await fetchAll(edge.url, [variant], ACCEPT_WEBP);
  const root = path.join(ctx.workDir, 'nginx-hot');
  await writeBaselineFiles(root, ['hot.webp'], [body!]);
  const nginx = await startStaticNginx(root, ctx.workDir);
  const bare = await startBareNode(path.join(root, 'hot.webp'), 'image/webp', ctx.workDir);
  const front = await startFront(ctx, edge);
  // The same edge without the lines of fresh hits (IMGEDGE_LOG_HITS=0), its cache of its own.
  let quiet: Child | undefined;
  try {
    quiet = await startEdge(edgeConfig({ origin: ctx.origin.url, cacheDir: path.join(ctx.workDir, 'cache-no-hit-lines'), port: await freePort(), memoryBytes: 8 * 2 ** 20 }),
      ctx.workDir, path.join(ctx.workDir, 'edge-no-hit-lines.log'), { IMGEDGE_LOG_HITS: '0' });
    await fetchAll(quiet.url, [variant, variant], ACCEPT_WEBP);
    const quietEdge = quiet;
    const sides = await sideBySide(ctx, [
      { name: 'imgedge', pid: edge.pid, load: () => timedLoad({ baseUrl: edge.url, paths: [variant], connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
      { name: NO_HIT_LINES, pid: quietEdge.pid, load: () => timedLoad({ baseUrl: quietEdge.url, paths: [variant], connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
      { name: 'nginx static', load: () => timedLoad({ baseUrl: nginx.url, paths: ['/hot.webp'], connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
      { name: 'bare node:http', pid: bare.pid, load: () => timedLoad({ baseUrl: bare.url, paths: ['/hot.webp'], connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
      ...(front ? [{ name: FRONTED, load: () => timedLoad({ baseUrl: front.url, paths: [variant], connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) }] : []),
    ]);
    const [edgeSide, quietSide, nginxSide, bareSide, frontSide] = sides as [Side, Side, Side, Side, Side | undefined];
    // The target is against the ceiling of any Node.js server here (issue 14), not against nginx.
    const r = ratio(edgeSide, bareSide);
    const cpu = (side: Side) => (side.cpuMs === undefined ? 'not measured' : `${(1000 * cpuPerRequest(side)).toFixed(1)} µs`);
    return {
      id: 'hot-hit', title: 'Hot hit', setup: `one ${Math.round(body!.length / 1024)} KiB WebP variant from the memory tier, 32 connections`, sides,
      target: { text: '≥ 0.90 × bare node:http', value: ratioValue(edgeSide, bareSide), met: r >= 0.9 },
      notes: [
        `node:http answering the same bytes from memory and doing nothing else reaches ${ratio(bareSide, nginxSide).toFixed(2)} × nginx here; the edge reaches ${ratio(edgeSide, nginxSide).toFixed(2)} × nginx. CPU per hit (all threads): imgedge ${cpu(edgeSide)}, bare node:http ${cpu(bareSide)}`,
        `${NO_HIT_LINES} (no request line for a fresh hit; metrics and dashboard still count it): ${ratioValue(quietSide, edgeSide)} the edge's hits a second, ${ratio(quietSide, bareSide).toFixed(2)} × bare node:http, ${cpu(quietSide)} of CPU a hit`,
        frontSide ? `${FRONTED}: ${ratio(frontSide, nginxSide).toFixed(2)} × nginx static` : 'nginx or openssl missing: the deployed stack was not measured',
      ],
    };
  } finally {
    await Promise.all([nginx.stop(), bare.stop(), front?.stop(), quiet?.stop()]);
  }
}

/** Writes the hot set's bytes as the edge serves them, for nginx to serve: `<index>.webp`. Returns their total size. */
export async function prepareHotSet(ctx: BenchContext, edge: Child, variants: string[]): Promise<number> {
  const bodies = await fetchAll(edge.url, variants, ACCEPT_WEBP);
  await writeBaselineFiles(path.join(ctx.workDir, 'nginx-set'), variants.map((_, i) => `${i}.webp`), bodies);
  return bodies.reduce((n, b) => n + b.length, 0);
}

export async function hotSet(ctx: BenchContext, edge: Child, variants: string[], bytes: number, tierBytes: number): Promise<ScenarioResult> {
  ctx.log(`hot set: Zipf over ${variants.length} variants in the memory tier`);
  const root = path.join(ctx.workDir, 'nginx-set');
  const order = zipfSequence(variants.length, 200_000, 1.0, 7);
  const nginx = await startStaticNginx(root, ctx.workDir);
  const front = await startFront(ctx, edge);
  try {
    const sides = await sideBySide(ctx, [
      { name: 'imgedge', load: () => timedLoad({ baseUrl: edge.url, paths: order.map((i) => variants[i]!), connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
      { name: 'nginx static', load: () => timedLoad({ baseUrl: nginx.url, paths: order.map((i) => `/${i}.webp`), connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
      ...(front ? [{ name: FRONTED, load: () => timedLoad({ baseUrl: front.url, paths: order.map((i) => variants[i]!), connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) }] : []),
    ]);
    const r = ratio(sides[0]!, sides[1]!);
    return {
      notes: sides[2] ? [`${FRONTED}: ${ratio(sides[2], sides[1]!).toFixed(2)} × nginx static`] : [],
      id: 'hot-set', title: 'Hot set', setup: `Zipf (s = 1) over ${variants.length} WebP variants, ${(bytes / 1024 ** 2).toFixed(1)} MiB in all (memory tier ${(tierBytes / MiB).toFixed(0)} MiB), 32 connections`, sides,
      target: { text: '≥ 0.80 × nginx (hot-hit target)', value: ratioValue(sides[0]!, sides[1]!), met: r >= 0.8 },
    };
  } finally {
    await Promise.all([nginx.stop(), front?.stop()]);
  }
}

/** Disk hits: the same variants, asked for uniformly, through an edge whose memory tier holds an eighth of them. */
export async function diskHits(ctx: BenchContext, edge: Child, variants: string[], memoryBytes: number, setBytes: number): Promise<ScenarioResult> {
  ctx.log(`disk hits: ${variants.length} variants, ${(setBytes / 1024 ** 2).toFixed(1)} MiB, memory tier ${(memoryBytes / 1024 ** 2).toFixed(1)} MiB`);
  const root = path.join(ctx.workDir, 'nginx-set');
  const random = seededRandom(11);
  const order = Array.from({ length: 200_000 }, () => Math.floor(random() * variants.length));
  const nginx = await startStaticNginx(root, ctx.workDir);
  try {
    const before = await edgeCounters(edge.url);
    const sides = await sideBySide(ctx, [
      { name: 'imgedge', load: () => timedLoad({ baseUrl: edge.url, paths: order.map((i) => variants[i]!), connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
      { name: 'nginx static', load: () => timedLoad({ baseUrl: nginx.url, paths: order.map((i) => `/${i}.webp`), connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }) },
    ]);
    const after = await edgeCounters(edge.url);
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    const fromDisk = delta('imgedge_cache_hits_total{tier="disk"}');
    const fromMemory = delta('imgedge_cache_hits_total{tier="memory"}');
    const r = ratio(sides[0]!, sides[1]!);
    return {
      id: 'disk-hits', title: 'Disk hits', sides,
      setup: `uniform over the same ${variants.length} variants (${(setBytes / 1024 ** 2).toFixed(1)} MiB) with a ${(memoryBytes / 1024 ** 2).toFixed(1)} MiB memory tier, 32 connections`,
      target: { text: '≥ 0.50 × nginx', value: ratioValue(sides[0]!, sides[1]!), met: r >= 0.5 },
      notes: [`${Math.round((100 * fromDisk) / Math.max(1, fromDisk + fromMemory))} % of the edge's hits were read from disk (${fromDisk} of ${fromDisk + fromMemory})`],
    };
  } finally {
    await nginx.stop();
  }
}

/**
 * Distinct (source, width) pairs of the 2725×2225 sources for one round: widths 600…1799 taken
 * by residue, so every round asks for the same spread of sizes and no round repeats another's.
 */
function missJobs(fixtures: FixtureSet, round: number, rounds: number): { source: number; width: number }[] {
  const jobs = [];
  for (let w = 600 + round; w < 1800; w += rounds) for (let s = 0; s < fixtures.miss; s++) jobs.push({ source: s, width: w });
  return jobs;
}

export async function misses(ctx: BenchContext, edge: Child): Promise<ScenarioResult> {
  const concurrency = 4;
  ctx.log(`misses: every request a new JPEG variant of a 2725×2225 source, ${concurrency} at a time`);
  // The sources are fetched once before, so the edge's misses are transforms, as sharp's loop is.
  await fetchAll(edge.url, Array.from({ length: ctx.fixtures.miss }, (_, s) => `/miss/${s}.jpg?w=64&fm=jpg&q=80`), {});
  const ipx = await startIpx(ctx.fixtures.dir, ctx.workDir, sharpEnv());
  // Misses are few per second, so the sides take turns twice as often, for half as long each:
  // the machine's drift (other guests' load) then falls on all three alike.
  const rounds = 2 * ctx.rounds;
  const seconds = Math.max(3, ctx.seconds / 2);
  let round = { edge: 0, sharp: 0, ipx: 0 };
  const next = (side: keyof typeof round) => missJobs(ctx.fixtures, round[side]++, rounds);
  try {
    const sides = await sideBySide(ctx, [
      {
        name: 'imgedge',
        pid: edge.pid,
        finished: transformsFinished(edge),
        load: () => timedLoad({ baseUrl: edge.url, paths: next('edge').map((j) => `/miss/${j.source}.jpg?w=${j.width}&fm=jpg&q=80`), connections: concurrency, seconds }),
      },
      {
        name: 'sharp loop',
        load: async () => {
          const jobs = next('sharp').map((j) => ({ file: path.join(ctx.fixtures.dir, 'miss', `${j.source}.jpg`), width: j.width }));
          const args = path.join(ctx.workDir, 'sharp-loop.json');
          await writeFile(args, JSON.stringify({ jobs, concurrency, seconds, quality: 80 }));
          const { stdout } = await run(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), 'sharp-loop.js'), args], { env: { ...process.env, ...sharpEnv() } });
          return JSON.parse(stdout) as LoadResult;
        },
      },
      {
        name: 'ipx',
        pid: ipx.pid,
        load: () => timedLoad({ baseUrl: ipx.url, paths: next('ipx').map((j) => `/w_${j.width},f_jpeg,q_80/miss/${j.source}.jpg`), connections: concurrency, seconds }),
      },
    ], rounds);
    const cpu = (side: Side) => (side.cpuMs === undefined ? 'not measured' : `${cpuPerRequest(side).toFixed(0)} ms`);
    const r = ratio(sides[0]!, sides[1]!);
    // What the encoder settings buy: one and the same variant from each.
    const [ours] = await fetchAll(edge.url, ['/miss/0.jpg?w=1000&fm=jpg&q=80'], {});
    const [theirs] = await fetchAll(ipx.url, ['/w_1000,f_jpeg,q_80/miss/0.jpg'], {});
    return {
      id: 'misses', title: 'Misses', sides,
      setup: `w = 600…1799 of four 2725×2225 JPEGs → JPEG q80, every request distinct, ${concurrency} at a time (the edge transforms 2 per core), the three sides in turn ${rounds} × ${seconds} s`,
      target: { text: '≥ 0.95 × sharp', value: ratioValue(sides[0]!, sides[1]!), met: r >= 0.95 },
      notes: [
        `CPU per request (all threads): imgedge ${cpu(sides[0]!)}, sharp ${cpu(sides[1]!)}, ipx ${cpu(sides[2]!)} (ipx's window also holds part of the misses in flight when its load stops)`,
        ...cpuByThreadNote(sides[0]!, sides[1]!),
        ...machineNote(sides[0]!, sides[1]!),
        `ipx: ${ratio(sides[2]!, sides[1]!).toFixed(2)} × sharp; it encodes with sharp's plain JPEG settings (no trellis quantisation), so its files are larger: w = 1000 at q80 is ${kib(theirs!)} KiB from ipx, ${kib(ours!)} KiB from the edge`,
      ],
    };
  } finally {
    await ipx.stop();
  }
}

/**
 * Misses at small outputs, the way a new user first tries the edge: w = 500…559 of the 2725×2225
 * sources → WebP q75, every request distinct (each round a quality of its own, so no round repeats
 * another's variants), 4 at a time, beside sharp doing the same jobs. At this size decoding
 * (shrink-on-load) and encoding are quick, so whatever a miss costs outside libvips shows.
 */
export async function smallMisses(ctx: BenchContext, edge: Child): Promise<ScenarioResult> {
  const concurrency = 4;
  ctx.log(`small misses: every request a new 500-559 px WebP of a 2725×2225 source, ${concurrency} at a time`);
  await fetchAll(edge.url, Array.from({ length: ctx.fixtures.miss }, (_, s) => `/miss/${s}.jpg?w=64&fm=webp&q=75`), {});
  const rounds = 2 * ctx.rounds;
  const seconds = Math.max(3, ctx.seconds / 2);
  // Untimed misses first (q95, a quality no timed round asks for), so the timed rounds measure
  // the miss path as a running edge has it, not V8 compiling it: a fresh process spent about
  // 0.7 ms per miss of its first few hundred in the optimizing compiler (perf, V8's worker threads).
  const warming = [];
  for (let w = 500; w < 560; w++) for (let s = 0; s < ctx.fixtures.miss; s++) warming.push(`/miss/${s}.jpg?w=${w}&fm=webp&q=95`);
  await timedLoad({ baseUrl: edge.url, paths: warming, connections: concurrency, seconds });
  const round = { edge: 0, sharp: 0 };
  const jobs = (side: keyof typeof round) => {
    const quality = 75 - round[side]++;
    const list = [];
    for (let w = 500; w < 560; w++) for (let s = 0; s < ctx.fixtures.miss; s++) list.push({ source: s, width: w, quality });
    return list;
  };
  const sides = await sideBySide(ctx, [
    {
      name: 'imgedge',
      pid: edge.pid,
      finished: transformsFinished(edge),
      load: () => timedLoad({ baseUrl: edge.url, paths: jobs('edge').map((j) => `/miss/${j.source}.jpg?w=${j.width}&fm=webp&q=${j.quality}`), connections: concurrency, seconds }),
    },
    {
      name: 'sharp loop',
      load: async () => {
        const list = jobs('sharp');
        const args = path.join(ctx.workDir, 'sharp-loop-small.json');
        await writeFile(args, JSON.stringify({ jobs: list.map((j) => ({ file: path.join(ctx.fixtures.dir, 'miss', `${j.source}.jpg`), width: j.width })), concurrency, seconds, quality: list[0]!.quality, format: 'webp' }));
        const { stdout } = await run(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), 'sharp-loop.js'), args], { env: { ...process.env, ...sharpEnv() } });
        return JSON.parse(stdout) as LoadResult;
      },
    },
  ], rounds);
  const r = ratio(sides[0]!, sides[1]!);
  const cpu = (side: Side) => (side.cpuMs === undefined ? 'not measured' : `${cpuPerRequest(side).toFixed(1)} ms`);
  return {
    id: 'small-misses', title: 'Misses at small outputs', sides,
    setup: `w = 500…559 of four 2725×2225 JPEGs → WebP q75 (a quality per round), every request distinct, ${concurrency} at a time, the sides in turn ${rounds} × ${seconds} s`,
    target: { text: '≥ 0.95 × sharp', value: ratioValue(sides[0]!, sides[1]!), met: r >= 0.95 },
    notes: [
      `CPU per request (all threads): imgedge ${cpu(sides[0]!)}, sharp ${cpu(sides[1]!)}; the load generator shares the two cores with the edge, not with the sharp loop`,
      ...cpuByThreadNote(sides[0]!, sides[1]!),
      ...machineNote(sides[0]!, sides[1]!),
    ],
  };
}

/** 90 % hot-set hits (Zipf), 10 % new WebP variants. */
export function mixedPaths(fixtures: FixtureSet, variants: string[], count: number, offset: number): string[] {
  const order = zipfSequence(variants.length, count, 1.0, 13 + offset);
  let miss = offset;
  return order.map((i, n) => {
    if (n % 10 !== 9) return variants[i]!;
    const m = miss++;
    // widths 201…699 but not the hot set's tens: 20 sources × 450 = 9 000 variants no other request asks for
    const k = Math.floor(m / fixtures.hot) % 450;
    return `/hot/${m % fixtures.hot}.jpg?w=${201 + Math.floor(k / 9) * 10 + (k % 9)}&auto=format`;
  });
}

export async function mixed(ctx: BenchContext, edge: Child, variants: string[]): Promise<{ result: ScenarioResult; rss: ScenarioResult }> {
  ctx.log('mixed: 90 % hits, 10 % misses');
  let offset = 0;
  const sides = await sideBySide(ctx, [
    {
      name: 'imgedge',
      load: () => {
        const paths = mixedPaths(ctx.fixtures, variants, 50_000, offset);
        offset += 2_000;
        return timedLoad({ baseUrl: edge.url, paths, connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP });
      },
    },
  ]);
  ctx.log('memory: 10 000 mixed requests to warm up (the memory tier fills), then 20 000');
  // misses of the RSS run start past those of the timed runs
  const warm = mixedPaths(ctx.fixtures, variants, 10_000, 4_000);
  await countedLoad({ baseUrl: edge.url, paths: warm, count: warm.length, concurrency: 32, headers: ACCEPT_WEBP });
  const before = await settledMemory(edge);
  const checkpoints = [before.rssMiB];
  const cache: Record<string, number> = {};
  const runs: LoadResult[] = [];
  for (let part = 0; part < 4; part++) {
    const paths = mixedPaths(ctx.fixtures, variants, 5_000, 5_000 + part * 500);
    const counted = await countedLoad({ baseUrl: edge.url, paths, count: paths.length, concurrency: 32, headers: ACCEPT_WEBP });
    for (const [k, v] of Object.entries(counted.cache)) cache[k] = (cache[k] ?? 0) + v;
    runs.push(counted);
    checkpoints.push((await memoryOf(edge.pid)).rssMiB);
  }
  const after = await settledMemory(edge);
  checkpoints[checkpoints.length - 1] = after.rssMiB;
  const counted = combine('imgedge', runs);
  const growth = (after.rssMiB - before.rssMiB) / before.rssMiB;
  const series = checkpoints.map((m) => m.toFixed(0)).join(' → ');
  ctx.log(`  RSS every 5 000 requests: ${series} MiB (${(100 * growth).toFixed(1)} %), X-Cache ${JSON.stringify(cache)}`);
  return {
    result: {
      id: 'mixed', title: 'Mixed', setup: '90 % hot-set hits (Zipf), 10 % new WebP variants (w = 201…699) of 1200×800 sources, 32 connections', sides,
      notes: ['The p99 is the misses\': each waits for one of the 4 transform turns; the hits between them share the two cores with the encoders'],
    },
    rss: {
      id: 'rss-growth', title: 'Memory over 20 000 mixed requests', sides: [counted],
      setup: `after 10 000 mixed requests to warm up, 20 000 more (X-Cache: ${Object.entries(cache).map(([k, v]) => `${k} ${v}`).join(', ')}), 32 at a time; RSS read 2 s after the load stops`,
      target: { text: 'RSS grows < 10 %', value: `${before.rssMiB.toFixed(0)} → ${after.rssMiB.toFixed(0)} MiB (${growth >= 0 ? '+' : ''}${(100 * growth).toFixed(1)} %)`, met: growth < 0.1 },
      notes: [`RSS every 5 000 requests: ${series} MiB`],
    },
  };
}

/** RSS once the load has stopped for 2 s (allocators hand back freed pages after a short delay). */
async function settledMemory(edge: Child): Promise<{ rssMiB: number }> {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return memoryOf(edge.pid);
}

export async function stampede(ctx: BenchContext, edge: Child): Promise<ScenarioResult> {
  ctx.log('stampede: 200 concurrent requests for one uncached variant');
  const source = `/big/${1000 + Math.floor(Date.now() % 100_000)}.jpg`;
  const before = await edgeCounters(edge.url);
  const result = await countedLoad({ baseUrl: edge.url, paths: [`${source}?w=1200&fm=jpg&q=80`], count: 200, concurrency: 200 });
  const after = await edgeCounters(edge.url);
  const transforms = (after.get('imgedge_transform_seconds_count') ?? 0) - (before.get('imgedge_transform_seconds_count') ?? 0);
  const fetches = ctx.origin.fetches.get(source) ?? 0;
  ctx.log(`  origin fetches ${fetches}, transforms ${transforms}, statuses ${JSON.stringify(result.statuses)}`);
  return {
    id: 'stampede', title: 'Stampede', sides: [{ name: 'imgedge', ...result }],
    setup: '200 connections ask at once for one variant (w = 1200 JPEG) of an 8-megapixel source nobody asked for before',
    target: { text: '1 origin fetch, 1 transform', value: `${fetches} fetch, ${transforms} transform; ${JSON.stringify(result.statuses)}`, met: fetches === 1 && transforms === 1 && result.statuses['200'] === 200 },
    notes: [],
  };
}

/** Peak RSS of a fresh edge while 64 misses of 8-megapixel JPEGs are in flight (two waves). */
export async function bigMisses(ctx: BenchContext, edge: Child, allocator: 'jemalloc' | 'glibc'): Promise<ScenarioResult> {
  ctx.log(`memory: 64 concurrent misses of 8-megapixel JPEGs, two waves (${allocator})`);
  const paths = Array.from({ length: 128 }, (_, i) => `/big/${i}.jpg?w=${1600 + (i % 64)}&fm=jpg&q=80`);
  const result = await countedLoad({ baseUrl: edge.url, paths, count: paths.length, concurrency: 64 });
  const { peakMiB } = await memoryOf(edge.pid);
  ctx.log(`  peak RSS ${peakMiB.toFixed(0)} MiB, statuses ${JSON.stringify(result.statuses)}`);
  const setup = `128 distinct 3464×2309 sources → JPEG w = 1600…1663, 64 at a time, on a freshly started edge (${allocator === 'jemalloc' ? 'bin/imgedge-start: jemalloc' : "IMGEDGE_JEMALLOC=0: glibc's malloc, for comparison"})`;
  const value = `${peakMiB.toFixed(0)} MiB; ${JSON.stringify(result.statuses)}`;
  if (allocator === 'glibc') {
    return { id: 'big-misses-glibc', title: '64 misses of 8 MP JPEGs, glibc malloc', sides: [{ name: 'imgedge', ...result }], setup, notes: [`peak RSS ${value}`] };
  }
  return {
    id: 'big-misses', title: '64 misses of 8 MP JPEGs', sides: [{ name: 'imgedge', ...result }], setup,
    // 512 MB = 512 × 10⁶ bytes, the stricter reading
    target: { text: 'peak RSS ≤ 512 MB', value, met: peakMiB * MiB <= 512e6 && result.statuses['200'] === paths.length },
    notes: [],
  };
}
