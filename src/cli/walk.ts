/** The files a run works on: the paths given, folders searched recursively. */
import { readdir, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';

export interface InputFile {
  path: string;
  /** where it lands under --out: relative to the folder given, or its own name for a file */
  relative: string;
}

async function walk(dir: string, root: string, skip: string | undefined, into: InputFile[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (resolve(path) !== skip) await walk(path, root, skip, into);
    } else if (e.isFile()) {
      into.push({ path, relative: relative(root, path) });
    }
  }
}

/**
 * Files under `paths`, in order. `skip` (the output folder) is not searched, so a second run
 * does not optimize the first run's results. A path that cannot be read is still listed: its
 * error is reported with that file.
 */
export async function collectFiles(paths: string[], skip: string | undefined): Promise<InputFile[]> {
  const files: InputFile[] = [];
  for (const p of paths) {
    const isDir = await stat(p).then((s) => s.isDirectory(), () => false);
    if (isDir) await walk(p, p, skip && resolve(skip), files);
    else files.push({ path: p, relative: basename(p) });
  }
  return files;
}
