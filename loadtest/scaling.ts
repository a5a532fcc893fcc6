/**
 * Every core: one edge process, then two, behind nginx/imgedge.conf as rendered for a deployment
 * (micro-cache off, so every request reaches an edge), on this machine. Hits over the hot set and
 * small misses, each side in turn; the CPU of the edges and of nginx is read from /proc, so the
 * figures per core hold even though the load generator shares the two cores here.
 */
import path from 'node:path';
import { freePort } from '../test/helpers/processes.js';
import { childrenOf, makeTestCert, renderNginx, startNginx, type RunningNginx } from '../test/helpers/nginx.js';
import { countedLoad, timedLoad, type LoadResult } from './drive.js';
import { ACCEPT_WEBP, combine, fetchAll, writeBaselineFiles, type BenchContext, type ScenarioResult, type Side } from './scenarios.js';
import { edgeConfig, startEdge, startStaticNginx, type Child } from './servers.js';
import { cpuMsOfAll, percentOf } from './thread-cpu.js';

interface Stack {
  name: string;
  url: string;
  edges: Child[];
  nginx: RunningNginx;
}

/** A run with the edges' CPU (cpuMs) and nginx's. */
interface Measured extends LoadResult {
  nginxCpuMs: number;
}

/** What deploy/imgedge@.service sets for each of its one-per-core processes. */
const UNIT_PER_PROCESS = { IMGEDGE_TRANSFORM_CONCURRENCY: '2', UV_THREADPOOL_SIZE: '7' };

async function startStack(ctx: BenchContext, edges: Child[], name: string): Promise<Stack | undefined> {
  const prefix = path.join(ctx.workDir, `scaling-${edges.length}`);
  const [port, tlsPort] = [await freePort(), await freePort()];
  const cert = await makeTestCert(path.join(prefix, 'tls'));
  if (!cert) return undefined;
  const conf = await renderNginx({
    nodes: edges.map((e) => e.url.replace('http://', '')), listenPort: port, tlsPort, ...cert, prefix, workers: 1,
    allowNets: ['127.0.0.1'], rateLimitExempt: ['127.0.0.1'], extra: { MICRO_CACHE: 'off' },
  });
  const nginx = await startNginx(conf);
  return nginx && { name, url: `http://127.0.0.1:${port}`, edges, nginx };
}

/** A run with the CPU of the edges (none for static nginx) and of nginx, master and workers. */
async function measure(edgePids: number[], nginxPids: () => number[], load: () => Promise<LoadResult>): Promise<Measured> {
  const [e0, n0] = [await cpuMsOfAll(edgePids), await cpuMsOfAll(nginxPids())];
  const result = await load();
  return { ...result, cpuMs: (await cpuMsOfAll(edgePids)) - e0, nginxCpuMs: (await cpuMsOfAll(nginxPids())) - n0 };
}

/** nginx answering the hot set's bytes from files: the scaling scenario's floor for nginx. */
const STATIC = 'nginx static, the same bytes';

type Combined = Side & { edgeMsPerRequest: number; nginxMsPerRequest: number };

function combineWithNginx(name: string, runs: Measured[]): Combined {
  const side = combine(name, runs);
  return { ...side, edgeMsPerRequest: side.cpuMs! / side.requests, nginxMsPerRequest: runs.reduce((n, r) => n + r.nginxCpuMs, 0) / side.requests };
}

/**
 * Hits (the hot set, uniform) and misses (new 500–559 px WebPs of the 2725×2225 sources) through
 * one process and through two, in turn. `variants` are the hot set's paths, already cached by
 * `warm` (the edges are fresh here: they are warmed through their own stack first).
 */
export async function scaling(ctx: BenchContext, variants: string[], memoryBytes: number, cacheDir: string): Promise<ScenarioResult[]> {
  const edges: Child[] = [];
  const stacks: Stack[] = [];
  let staticNginx: Child | undefined;
  try {
    // One process as `npm start` runs it (2 × cores transforms at once); two as
    // deploy/imgedge@.service runs one per core (2 transforms each, and the pool to match).
    for (const [name, count, env] of [['1 process', 1, {}], ['2 processes', 2, UNIT_PER_PROCESS]] as const) {
      const members: Child[] = [];
      for (let i = 0; i < count; i++) {
        const config = edgeConfig({ origin: ctx.origin.url, cacheDir: path.join(cacheDir, `${count}-${i}`), port: await freePort(), memoryBytes });
        members.push(await startEdge(config, ctx.workDir, path.join(ctx.workDir, `scaling-edge-${count}-${i}.log`), env));
        edges.push(members.at(-1)!); // stopped in `finally` even if a later start fails
      }
      const stack = await startStack(ctx, members, name);
      if (!stack) return [];
      stacks.push(stack);
      // Each stack's edges hold every variant its hash sends them before anything is timed.
      const warm = await countedLoad({ baseUrl: stack.url, paths: variants, count: variants.length, concurrency: 4, headers: ACCEPT_WEBP });
      if (warm.errors > 0) throw new Error(`scaling: warming ${name} failed: ${JSON.stringify(warm.statuses)}`);
    }
    // nginx serving the same bytes as static files, as tuned for them (servers.ts): what nginx
    // costs a request with no upstream to talk to. Taken as a floor under its proxied hit, which
    // also writes the JSON log line, applies the rate limiter and talks to an edge.
    const staticRoot = path.join(ctx.workDir, 'scaling-static');
    const staticPaths = variants.map((_, i) => `/${i}.webp`);
    await writeBaselineFiles(staticRoot, staticPaths.map((p) => p.slice(1)), await fetchAll(stacks[0]!.url, variants, ACCEPT_WEBP));
    const nginxStatic = (staticNginx = await startStaticNginx(staticRoot, ctx.workDir));
    const staticPids = () => {
      const workers = childrenOf(nginxStatic.pid);
      // Without /proc's children list nginx's worker would go uncounted, and its cost read as 0.
      if (workers.length === 0) throw new Error('scaling: static nginx has no worker process to measure');
      return [nginxStatic.pid, ...workers];
    };
    const staticRuns: Measured[] = [];
    const rounds = ctx.rounds;
    const hitRuns = new Map(stacks.map((s) => [s.name, [] as Measured[]]));
    const missRuns = new Map(stacks.map((s) => [s.name, [] as Measured[]]));
    let quality = 90;
    for (let r = 0; r < rounds; r++) {
      for (const stack of stacks) {
        const edgePids = stack.edges.map((e) => e.pid);
        const nginxPids = () => [stack.nginx.pid, ...stack.nginx.workers()];
        const hits = await measure(edgePids, nginxPids, () => timedLoad({ baseUrl: stack.url, paths: variants, connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }));
        ctx.log(`  scaling, hits, ${stack.name}: ${Math.round(hits.rps)} req/s, edges ${(hits.cpuMs! / hits.requests).toFixed(3)} ms CPU, nginx ${(hits.nginxCpuMs / hits.requests).toFixed(3)} ms CPU a request`);
        hitRuns.get(stack.name)!.push(hits);
        const q = quality--;
        const missPaths: string[] = [];
        for (let w = 500; w < 560; w++) for (let s = 0; s < ctx.fixtures.miss; s++) missPaths.push(`/miss/${s}.jpg?w=${w}&fm=webp&q=${q}`);
        const misses = await measure(edgePids, nginxPids, () => timedLoad({ baseUrl: stack.url, paths: missPaths, connections: 4, seconds: Math.max(3, ctx.seconds / 2) }));
        ctx.log(`  scaling, misses, ${stack.name}: ${misses.rps.toFixed(1)} req/s, edges ${(misses.cpuMs! / misses.requests).toFixed(1)} ms CPU a request`);
        missRuns.get(stack.name)!.push(misses);
      }
      const statics = await measure([], staticPids, () => timedLoad({ baseUrl: nginxStatic.url, paths: staticPaths, connections: 32, seconds: ctx.seconds, headers: ACCEPT_WEBP }));
      ctx.log(`  scaling, ${STATIC}: ${Math.round(statics.rps)} req/s, nginx ${(statics.nginxCpuMs / statics.requests).toFixed(3)} ms CPU a request`);
      staticRuns.push(statics);
    }
    const [hit1, hit2] = stacks.map((s) => combineWithNginx(s.name, hitRuns.get(s.name)!)) as [Combined, Combined];
    const [miss1, miss2] = stacks.map((s) => combineWithNginx(s.name, missRuns.get(s.name)!)) as [Combined, Combined];
    // No edge on this side: its CPU is nginx's alone (nginxMsPerRequest), none is given as an edge's.
    const { cpuMs: _noEdge, edgeMsPerRequest: _noEdgeMs, ...statics } = combineWithNginx(STATIC, staticRuns);
    // The model, from what a hit costs one process alone (e ms of the edge's core, n ms of nginx),
    // for N cores with the load generator elsewhere. One process is held to one core, its event
    // loop; N processes share the N cores with nginx when it runs on the same machine (the layout
    // of docs/OPERATIONS.md), or have them to themselves when nginx runs elsewhere.
    const e = hit1.edgeMsPerRequest;
    const n = hit1.nginxMsPerRequest;
    const oneProcess = (cores: number) => Math.min(1000 / e, (cores * 1000) / (e + n));
    const nginxHere = (cores: number) => (cores * 1000) / (e + n);
    const nginxElsewhere = (cores: number) => (cores * 1000) / e;
    const modelled = nginxHere(2) / oneProcess(2);
    // 2e / (e + n) ≥ 1.7 needs n ≤ 0.3e / 1.7: nginx's proxied hit under 17.6 % of the edge's.
    const s = statics.nginxMsPerRequest;
    const bestCase = (2 * e) / (e + s);
    const perCore = (side: Combined) => (side.rps * (side.edgeMsPerRequest + side.nginxMsPerRequest)) / 1000;
    return [
      {
        id: 'scaling-hits', title: 'Hits, 1 and 2 processes behind nginx', sides: [hit1, hit2, statics],
        setup: `nginx/imgedge.conf rendered with NODES = 1 then 2 edge processes of this machine (one as npm start runs it, 2 × cores transforms at once; two as deploy/imgedge@.service runs them, 2 each), micro-cache off, one nginx worker; and nginx alone serving the same bytes as files (as tuned for static files, one worker); uniform over the ${variants.length} hot-set variants, 32 connections; each side ${rounds} × ${ctx.seconds} s in turn`,
        target: { text: '2 processes ≥ 1.7 × 1 process on 2 cores, generator elsewhere (modelled)', value: `${modelled.toFixed(2)} × with nginx on the same cores (measured here, generator included: ${(hit2.rps / hit1.rps).toFixed(2)} ×)`, met: modelled >= 1.7 },
        notes: [
          `CPU per hit: edge ${e.toFixed(3)} ms with one process, ${hit2.edgeMsPerRequest.toFixed(3)} ms with two (they and wrk contend for the 2 cores); nginx ${n.toFixed(3)} / ${hit2.nginxMsPerRequest.toFixed(3)} ms. Cores busy with the edges and nginx: ${perCore(hit1).toFixed(2)} with one process, ${perCore(hit2).toFixed(2)} with two; wrk takes the rest`,
          `Model from one process's costs, generator elsewhere: one process ≈ min(1000 / edge ms, N × 1000 / (edge + nginx ms)) = ${oneProcess(2).toFixed(0)}/s on 2 cores (held to one core); N processes ≈ N × ${(1000 / (e + n)).toFixed(0)}/s with nginx on the same machine, N × ${(1000 / e).toFixed(0)}/s with nginx elsewhere (N times one process by construction: the model assumes processes do not slow each other, which the measured two-process CPU per hit above contradicts on this machine). On 16 cores: ${nginxHere(16).toFixed(0)} and ${nginxElsewhere(16).toFixed(0)} hits/s, against ${oneProcess(16).toFixed(0)} for one process`,
          `With nginx on the same cores the model reaches 1.7 × only if nginx proxies a hit for at most 17.6 % of the edge's CPU per hit (2e / (e + n) ≥ 1.7); here it took ${percentOf(n / e)} %. ${STATIC} (no upstream, no JSON log line, no rate limiter) cost ${s.toFixed(3)} ms a request, ${percentOf(s / e)} % of the edge's hit: if nginx proxied a hit for no more than that, two processes would reach ${bestCase.toFixed(2)} × one${bestCase < 1.7 ? ', still short of 1.7 ×' : ''}. A faster edge (a smaller e) raises n / e and s / e, and so lowers 2e / (e + n)`,
        ],
      },
      {
        id: 'scaling-misses', title: 'Misses, 1 and 2 processes behind nginx', sides: [miss1, miss2],
        setup: `the same stacks; new 500–559 px WebPs of four 2725×2225 JPEGs (a quality per round), 4 connections`,
        notes: [
          `CPU per miss (edges): ${miss1.edgeMsPerRequest.toFixed(1)} ms with one process, ${miss2.edgeMsPerRequest.toFixed(1)} ms with two: libvips already spreads one process's misses over every core, so a second process adds no miss capacity; the hash sends each source to one process, so a few hot sources may not spread at all`,
        ],
      },
    ];
  } finally {
    await Promise.all([...stacks.map((s) => s.nginx.stop()), staticNginx?.stop()]);
    await Promise.all(edges.map((e) => e.stop()));
  }
}
