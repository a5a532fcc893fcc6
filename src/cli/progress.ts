/** Progress on stderr: a live bar on a terminal, one plain line per file otherwise. */
import cliProgress from 'cli-progress';
import { formatBytes } from './report.js';

export interface Progress {
  /** one more file done; `line` (its report) goes to stdout, above the bar on a terminal */
  fileDone(savedSoFar: number, line?: string): void;
  stop(): void;
}

export function startProgress(total: number): Progress {
  let done = 0;
  if (!process.stderr.isTTY) {
    return {
      fileDone(saved, line) {
        done++;
        if (line !== undefined) process.stdout.write(`${line}\n`);
        process.stderr.write(`[${done}/${total}] ${formatBytes(saved)} saved\n`);
      },
      stop() {},
    };
  }
  const bars = new cliProgress.MultiBar(
    { format: '{bar} {value}/{total} files | {saved} saved', hideCursor: true, clearOnComplete: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const bar = bars.create(total, 0, { saved: formatBytes(0) });
  return {
    fileDone(saved, line) {
      // On the same terminal as the bar, lines go through it so the bar is redrawn below them.
      if (line !== undefined) {
        if (process.stdout.isTTY) bars.log(`${line}\n`);
        else process.stdout.write(`${line}\n`);
      }
      bar.increment(1, { saved: formatBytes(saved) });
    },
    stop() {
      bars.update(); // writes lines still held in the bar's log buffer
      bars.stop();
    },
  };
}
