/**
 * CPU time of a process split by thread, from /proc: its event loop (the main thread), libvips'
 * workers, and the rest (libuv's pool, which also drives each sharp pipeline and its encoder;
 * V8's compiler and collector; the cache index's thread). Read before and after a run, it shows
 * where a miss's CPU goes, on the edge and on the sharp loop alike.
 */
import { readdir, readFile } from 'node:fs/promises';

/** CPU so far, in ms: the whole process (threads gone included), its main thread, and its other live threads but libvips' workers. */
export interface ThreadCpu {
  totalMs: number;
  eventLoopMs: number;
  /** by thread id and start time (a reused id is another thread): libuv's pool, V8's threads, worker threads; not libvips' workers, which come and go */
  others: Map<string, number>;
}

/** What a run cost between two readings, in ms. */
export interface CpuByThread {
  eventLoopMs: number;
  /** libvips' workers, and any thread that ended between the readings (libvips retires idle workers; the others here live on) */
  libvipsMs: number;
  /** the rest: libuv's pool, V8's threads, the index thread */
  otherMs: number;
}

/** utime + stime of a /proc stat line (fields 14 and 15, clock ticks of 10 ms here), its name and its start time (field 22). */
function parseStat(line: string): { name: string; ms: number; started: string } {
  const name = line.slice(line.indexOf('(') + 1, line.lastIndexOf(')'));
  const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return { name, ms: (Number(fields[11]) + Number(fields[12])) * 10, started: fields[19]! };
}

/** CPU time a process has used so far (user + system, all threads), in ms. */
export async function cpuMsOf(pid: number): Promise<number> {
  return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8')).ms;
}

/** cpuMsOf summed over several processes (nginx's master and workers, say); one that has exited counts 0. */
export async function cpuMsOfAll(pids: number[]): Promise<number> {
  return (await Promise.all(pids.map((p) => cpuMsOf(p).catch(() => 0)))).reduce((a, b) => a + b, 0);
}

/**
 * Read once before a run and once after it, and nothing in between: polling /proc during the run
 * cost the load test's own process about 28 ms of CPU a second, on the cores the edge was timed on.
 */
export async function readThreadCpu(pid: number): Promise<ThreadCpu> {
  const totalMs = await cpuMsOf(pid);
  let eventLoopMs = 0;
  const others = new Map<string, number>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    let stat;
    try {
      stat = parseStat(await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
    } catch {
      continue; // the thread ended while the list was read
    }
    if (tid === String(pid)) eventLoopMs = stat.ms;
    else if (stat.name !== 'libvips worker') others.set(`${tid}@${stat.started}`, stat.ms);
  }
  return { totalMs, eventLoopMs, others };
}

/** The whole machine's CPU time so far, all cores, in clock ticks (/proc/stat's first line: in a container pinned to some cores, the host's). */
export interface MachineCpu {
  busy: number;
  idle: number;
  /** time the hypervisor gave this machine's cores to others: a neighbour's load, not ours */
  steal: number;
}

export async function readMachineCpu(): Promise<MachineCpu> {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number) as number[];
  return { busy: user! + nice! + system! + irq! + softirq!, idle: idle! + iowait!, steal: steal! };
}

/** Shares of the machine's cores between two readings: busy (any process), and stolen by the hypervisor. */
export function machineShareBetween(before: MachineCpu, after: MachineCpu): { busy: number; steal: number } {
  const busy = after.busy - before.busy;
  const steal = after.steal - before.steal;
  const all = busy + steal + after.idle - before.idle;
  return all > 0 ? { busy: busy / all, steal: steal / all } : { busy: 0, steal: 0 };
}

/** A share as the report prints it, in whole percent (and judges it: 94.9 % is 95 %). */
export const percentOf = (share: number): number => Math.round(100 * share);

/**
 * libvips' share is what the process used beyond its main thread and its other threads: so a
 * worker that libvips retired during the run (after half a second idle) keeps its CPU.
 */
export function cpuBetween(before: ThreadCpu, after: ThreadCpu): CpuByThread {
  let otherMs = 0;
  for (const [tid, ms] of after.others) otherMs += ms - (before.others.get(tid) ?? 0);
  const eventLoopMs = after.eventLoopMs - before.eventLoopMs;
  return { eventLoopMs, libvipsMs: after.totalMs - before.totalMs - eventLoopMs - otherMs, otherMs };
}
