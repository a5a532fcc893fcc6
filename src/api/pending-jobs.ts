/**
 * Callback jobs accepted but not yet optimized: the caller already has its id, so each is kept
 * on disk (its options, and an upload's bytes) until its result is queued for delivery; a
 * restart runs again whatever it finds here.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface PendingJob {
  id: string;
  key: string;
  /** the body's options as sent (auth removed) */
  options: Record<string, unknown>;
  fileName?: string;
  /** an upload's bytes (a URL job fetches its source when it runs) */
  upload?: Buffer;
}

export class PendingJobs {
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<PendingJobs> {
    await mkdir(dir, { recursive: true });
    return new PendingJobs(dir);
  }

  private async writeAtomic(file: string, data: Buffer | string): Promise<void> {
    await writeFile(`${file}.tmp`, data);
    await rename(`${file}.tmp`, file);
  }

  /** The upload first, the record last: a record on disk always has its bytes. */
  async add(job: PendingJob): Promise<void> {
    const base = path.join(this.dir, job.id);
    if (job.upload) await this.writeAtomic(`${base}.src`, job.upload);
    const { upload: _bytes, ...record } = job;
    await this.writeAtomic(`${base}.json`, JSON.stringify({ ...record, hasUpload: job.upload !== undefined }));
  }

  async remove(id: string): Promise<void> {
    const base = path.join(this.dir, id);
    await rm(`${base}.json`, { force: true });
    await rm(`${base}.src`, { force: true });
  }

  async all(): Promise<PendingJob[]> {
    const jobs: PendingJob[] = [];
    for (const name of await readdir(this.dir)) {
      if (!/^[0-9a-f]{32}\.json$/.test(name)) continue;
      const base = path.join(this.dir, name.slice(0, -5));
      try {
        const record = JSON.parse(await readFile(`${base}.json`, 'utf8')) as PendingJob & { hasUpload: boolean };
        const { hasUpload, ...job } = record;
        jobs.push(hasUpload ? { ...job, upload: await readFile(`${base}.src`) } : job);
      } catch {
        await this.remove(name.slice(0, -5)); // a record without its bytes cannot run
      }
    }
    return jobs;
  }
}
