import { randomUUID } from 'node:crypto';
import { unlink, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { EdgeMetrics } from '../observe/metrics.js';
import { handlePurge, type PurgeDeps } from './purge-route.js';
import { EdgeError } from '../errors.js';
import { sendJson } from './respond.js';

export interface EdgeRouteDeps {
  cacheDir: string;
  metrics: EdgeMetrics;
  purge: PurgeDeps;
}

/** True when a file can be created in the cache directory right now. */
async function cacheWritable(dir: string): Promise<boolean> {
  const probe = path.join(dir, `.ready-${randomUUID()}.tmp`);
  try {
    await writeFile(probe, 'ok');
    await unlink(probe);
    return true;
  } catch {
    return false;
  }
}

/** The reserved /_edge/ routes; never proxied to an origin. */
export async function handleEdgeRoute(req: IncomingMessage, res: ServerResponse, pathname: string, deps: EdgeRouteDeps): Promise<void> {
  const route = `${req.method} ${pathname}`;
  switch (route) {
    case 'GET /_edge/health':
    case 'HEAD /_edge/health':
      return sendJson(res, 200, { status: 'ok' });
    case 'GET /_edge/ready':
    case 'HEAD /_edge/ready': {
      const [writable, shared] = await Promise.all([cacheWritable(deps.cacheDir), deps.purge.bus.healthy()]);
      const ready = writable && shared;
      const purgeLog = deps.purge.bus.unverifiedBefore() === undefined ? 'in-sync' : 'behind';
      return sendJson(res, ready ? 200 : 503, { ready, checks: { cacheWritable: writable, sharedStore: shared, purgeLog } });
    }
    case 'POST /_edge/purge':
      return handlePurge(req, res, deps.purge);
    case 'GET /_edge/metrics': {
      const text = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType, 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
    default:
      throw new EdgeError('EDGE_NOT_FOUND', `no edge route ${route}`);
  }
}
