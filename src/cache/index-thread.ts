/**
 * The index's thread (see entry-index.ts): every read, write and bulk walk of the index runs here,
 * on a connection of its own, so that no commit, fsync or page read (a purge over millions of
 * rows, or one row whose page is not in memory) holds the edge's event loop. Requests are handled
 * in the order they come; bulk work goes in time-sliced batches and lets the requests that came
 * meanwhile in between.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { connectIndex } from './index-db.js';
import { IndexRows } from './index-rows.js';
import { TimeSlice } from './time-slice.js';
import type { EntryRef, EntrySelector } from './types.js';

export interface ThreadRequest {
  id: number;
  op: string;
  args: unknown[];
}

export type ThreadMessage =
  | { id: number; result?: unknown; error?: { message: string; code?: string }; totals: { entries: number; bytes: number } }
  | { id: number; batch: unknown[]; totals: { entries: number; bytes: number } }
  | { checkpointError: string };

const { file, pageCacheKiB, checkpointMs, sliceMs } = workerData as { file: string; pageCacheKiB: number; checkpointMs: number; sliceMs: number };
const port = parentPort!;
const { db } = connectIndex(file, pageCacheKiB, false);
// Checkpoints are this thread's: they never wait, and never run inside a commit.
db.pragma('wal_autocheckpoint = 0');
db.pragma('busy_timeout = 1000');
const rows = new IndexRows(db);
/** One batch size per kind of walk, each sized to `sliceMs` by how long its last batch took. */
const slices = new Map<string, TimeSlice>();
const sliceFor = (kind: string) => slices.get(kind) ?? slices.set(kind, new TimeSlice(sliceMs, 2000)).get(kind)!;
const running = new Set<Promise<unknown>>();

const checkpoints = setInterval(() => {
  try {
    // PASSIVE: copies what it can without waiting on a reader; the next round does the rest.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    port.postMessage({ checkpointError: (err as Error).message } satisfies ThreadMessage);
  }
}, checkpointMs);

/** Removes what a purge selects, batch by batch, posting each batch as it goes; answers the count. */
async function removeSelected(id: number, selector: EntrySelector): Promise<number> {
  const parts = [...selector.tags.map((tag) => ({ tag })), ...selector.prefixes];
  const slice = sliceFor('purge');
  let removed = 0;
  for (const part of parts) {
    for (;;) {
      const gone = slice.time(() => rows.removeSelected(part, slice.size));
      slice.next();
      if (gone.length === 0) break;
      removed += gone.length;
      port.postMessage({ id, batch: gone, totals: rows.totals } satisfies ThreadMessage);
      await yieldToEventLoop();
    }
  }
  return removed;
}

/** Writes recency in time-sliced transactions, letting the requests that came meanwhile (a purge's next batch) in between. */
async function markUsed(uses: Array<{ ref: EntryRef; at: number }>): Promise<void> {
  const slice = sliceFor('uses');
  for (let from = 0; from < uses.length; ) {
    const batch = uses.slice(from, from + slice.size);
    slice.time(() => rows.markUsed(batch));
    slice.next();
    from += batch.length;
    if (from < uses.length) await yieldToEventLoop();
  }
}

/** A selection sized by its own time slice. */
function sliced<T>(kind: string, select: (limit: number) => T[]): T[] {
  const slice = sliceFor(kind);
  const selected = slice.time(() => select(slice.size));
  slice.next();
  return selected;
}

const ops: Record<string, (id: number, ...args: never[]) => unknown> = {
  write: (_, stored, found) => rows.write(stored, found),
  remove: (_, refs) => rows.remove(refs),
  removeSource: (_, sourceHash) => rows.removeSource(sourceHash),
  removeSourceUsedBefore: (_, sourceHash, before) => rows.removeSourceUsedBefore(sourceHash, before),
  removeSelected: (id, selector) => removeSelected(id, selector),
  sourcesInShard: (_, shard) => rows.sourcesInShard(shard),
  variantsOf: (_, sourceHash) => rows.variantsOf(sourceHash),
  present: (_, refs) => rows.present(refs),
  getState: (_, name) => rows.getState(name),
  recordedPurges: () => rows.recordedPurges(),
  leastRecentlyUsed: () => sliced('lru', (limit) => rows.leastRecentlyUsed(limit)),
  expiredBefore: (_, cutoff) => sliced('expired', (limit) => rows.expiredBefore(cutoff, limit)),
  markUsed: (_, uses) => markUsed(uses),
  setState: (_, name, value) => rows.setState(name, value),
  recordPurge: (_, at, selector) => rows.recordPurge(at, selector),
  forgetRecordedPurge: (_, purgeId) => rows.forgetRecordedPurge(purgeId),
  close: async () => {
    await Promise.all(running); // a purge under way finishes: its rows must not outlive it
    clearInterval(checkpoints);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  },
};

port.on('message', ({ id, op, args }: ThreadRequest) => {
  const answer = (body: { result?: unknown; error?: { message: string; code?: string } }) =>
    port.postMessage({ id, ...body, totals: rows.totals } satisfies ThreadMessage);
  const fail = (err: unknown) => answer({ error: { message: (err as Error).message, code: (err as { code?: string }).code } });
  try {
    const result = ops[op]!(id, ...(args as never[]));
    if (!(result instanceof Promise)) return answer({ result });
    const tracked = result.then((value) => answer({ result: value }), fail).finally(() => running.delete(tracked));
    if (op !== 'close') running.add(tracked);
  } catch (err) {
    fail(err);
  }
});
