import { open, realpath } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { EdgeError } from '../errors.js';
import { INSPECT_LIMIT, readLimited, tooLarge } from './body-limit.js';
import { contentTypeFor, SVG_PASSTHROUGH_HEADERS } from './mime.js';
import type { FetchOptions, Origin, OriginLimits, OriginResponse } from './types.js';

const notFound = (): OriginResponse => ({ status: 404, headers: { 'content-type': 'text/plain' }, body: Buffer.from('not found') });

/** A local folder as an origin. Paths (symlinks included) can never leave the root. */
export class FileOrigin implements Origin {
  private readonly root: string;
  private realRoot: Promise<string>;

  constructor(url: string, private readonly limits: OriginLimits, private readonly htmlHeaders: Record<string, string> = {}) {
    this.root = fileURLToPath(url.startsWith('file://') ? url : `file://${url.slice('file:'.length)}`);
    this.realRoot = realpath(this.root).catch(() => this.root);
  }

  /** The real file for a request path, or undefined when it is missing or outside the root. */
  private async resolve(pathAndQuery: string): Promise<string | undefined> {
    const pathname = pathAndQuery.split('?')[0] ?? '/';
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0')) return undefined;
    const root = await this.realRoot;
    const candidate = path.join(root, path.normalize(decoded));
    try {
      const real = await realpath(candidate);
      return real === root || real.startsWith(root + path.sep) ? real : undefined;
    } catch {
      return undefined;
    }
  }

  async fetch(pathAndQuery: string, options: FetchOptions = {}): Promise<OriginResponse> {
    const { inspect } = options;
    const file = await this.resolve(pathAndQuery);
    if (!file) return notFound();
    const handle = await open(file, 'r').catch(() => undefined);
    if (!handle) return notFound();
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) return notFound();
      if (stat.size > this.limits.maxSourceBytes) throw tooLarge(this.limits.maxSourceBytes);
      const headers = {
        'content-type': contentTypeFor(file),
        'content-length': String(stat.size),
        'last-modified': stat.mtime.toUTCString(),
      };
      // Only the very date the copy carries is a 304: a file put back with an older date changed too.
      if (options.ifModifiedSince === headers['last-modified']) return { status: 304, headers, body: Buffer.alloc(0) };
      const body = await readLimited(handle.createReadStream({ autoClose: false, highWaterMark: INSPECT_LIMIT }), this.limits.maxSourceBytes,
        inspect && ((head) => inspect(head, headers)));
      return { status: 200, headers, body };
    } finally {
      await handle.close();
    }
  }

  passthrough(req: IncomingMessage, res: ServerResponse, pathAndQuery: string, failed: (err: EdgeError) => void): void {
    void this.stream(req, res, pathAndQuery, failed).catch((err) => {
      failed(err instanceof EdgeError ? err : new EdgeError('EDGE_INTERNAL', 'could not read the file'));
    });
  }

  private async stream(req: IncomingMessage, res: ServerResponse, pathAndQuery: string, failed: (err: EdgeError) => void): Promise<void> {
    const pathname = pathAndQuery.split('?')[0] ?? '/';
    // A folder URL serves its index page, as a static web server would.
    const file = await this.resolve(pathname.endsWith('/') ? `${pathname}index.html` : pathname);
    const handle = file ? await open(file, 'r').catch(() => undefined) : undefined;
    const stat = handle ? await handle.stat() : undefined;
    if (!handle || !stat?.isFile()) {
      await handle?.close();
      failed(new EdgeError('EDGE_ORIGIN_STATUS', 'not found at the origin', { originStatus: 404 }));
      return;
    }
    const type = contentTypeFor(file!);
    res.writeHead(200, {
      ...(type.startsWith('image/svg') ? SVG_PASSTHROUGH_HEADERS : {}),
      ...(type.startsWith('text/html') ? this.htmlHeaders : {}),
      'content-type': type,
      'content-length': stat.size,
      'last-modified': stat.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') {
      await handle.close();
      res.end();
      return;
    }
    // The stream owns the handle: it closes it at the end, on error and when the client leaves.
    await pipeline(handle.createReadStream(), res).catch(() => undefined);
  }

  async close(): Promise<void> {}
}
