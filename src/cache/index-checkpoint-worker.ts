/**
 * Worker thread of entry-index.ts: checkpoints the index's write-ahead log into the database file
 * on its own connection, so the fsyncs a checkpoint makes never hold the edge's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file);
db.pragma('busy_timeout = 100');
const timer = setInterval(() => {
  try {
    // PASSIVE: copies what it can without waiting on the writer; the next round does the rest.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
}, intervalMs);

parentPort!.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
