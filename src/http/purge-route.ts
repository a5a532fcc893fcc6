import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { markTag, sourceHashOf } from '../cache/key.js';
import { allowedOriginMarkSources, sameSiteMarkSource } from '../optimize/mark-source.js';
import { EdgeError, badParam } from '../errors.js';
import { HttpError } from './errors.js';
import { sendJson } from './respond.js';
import type { Site, SiteRegistry } from '../optimize/sites.js';
import { sourceQueriesOf } from '../optimize/source-query.js';
import type { Logger } from '../observe/logger.js';
import type { PurgeBus, PurgeRequest } from '../purge/types.js';

const MAX_BODY_BYTES = 1024 * 1024;

const purgeBody = z
  .object({
    urls: z.array(z.string().min(1)).max(10_000).default([]),
    prefixes: z.array(z.string().min(1)).max(1_000).default([]),
    tags: z.array(z.string().min(1)).max(10_000).default([]),
    all: z.boolean().default(false),
  })
  .strict()
  .refine((b) => b.all || b.urls.length + b.prefixes.length + b.tags.length > 0, 'name urls, prefixes, tags or all');

export interface PurgeDeps {
  token: string | undefined;
  sites: SiteRegistry;
  bus: PurgeBus;
  logger: Logger;
  /** told of every purge this node accepted (the dashboard's recent purges) */
  onPurged?(summary: { at: number; what: string; purged: number }): void;
}

/** Constant-time comparison of the bearer token (hashes first, so lengths never leak either). */
function authorized(header: string | undefined, token: string | undefined): boolean {
  if (!token) return false;
  const given = /^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '';
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError('EDGE_BAD_PARAM', 413, 'the purge request body is too large', { param: 'body' });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw badParam('body', 'the purge request body must be JSON');
  }
}

/** A purge target as a site and a URL: absolute URLs name their site by host, paths the request's. */
function locate(target: string, field: string, requestHost: string | undefined, sites: SiteRegistry): { site: Site; url: URL } {
  let url: URL;
  try {
    url = new URL(target, 'http://purge.invalid');
  } catch {
    throw badParam(field, `"${target}" is not a URL or path`);
  }
  const site = sites.siteFor(url.host === 'purge.invalid' ? requestHost : url.host);
  if (!site) throw badParam(field, `no site serves "${target}"`);
  return { site, url };
}

/** POST /_edge/purge: removes every variant of the named sources, prefixes and tags on every node. */
export async function handlePurge(req: IncomingMessage, res: ServerResponse, deps: PurgeDeps): Promise<void> {
  if (!authorized(req.headers.authorization, deps.token)) {
    const why = deps.token ? 'a valid bearer token is required' : 'purging is off: no purge token is configured';
    throw new EdgeError('EDGE_UNAUTHORIZED', why);
  }
  const parsed = purgeBody.safeParse(await readBody(req));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badParam(String(issue.path[0] ?? 'body'), issue.message);
  }
  const body = parsed.data;
  const sourceHashes = body.urls.flatMap((u) => {
    // A URL on a site's allowed origin can only be a watermark's: it is keyed by that URL.
    const foreignMark = allowedOriginMarkSources(deps.sites.all, u);
    if (foreignMark.length > 0) return foreignMark;
    const { site, url } = locate(u, 'urls', req.headers.host, deps.sites);
    const sources = sourceQueriesOf(url, site).map((query) => sourceHashOf(site.config.name, url.pathname, query));
    // As a watermark the same URL is keyed without a language (mark-source.ts).
    return [...new Set([...sources, sameSiteMarkSource(site, url)])];
  });
  const purge: PurgeRequest = {
    id: randomUUID(),
    at: Date.now(),
    sourceHashes,
    prefixes: body.prefixes.map((p) => {
      const { site, url } = locate(p, 'prefixes', req.headers.host, deps.sites);
      return { site: site.config.name, prefix: url.pathname };
    }),
    // A URL may also be a watermark: the variants drawn with it go too.
    tags: [...body.tags, ...sourceHashes.map(markTag)],
    all: body.all,
  };
  const purged = await deps.bus.publish(purge);
  deps.logger.info(
    { audit: 'purge', id: purge.id, from: req.socket.remoteAddress, urls: body.urls, prefixes: body.prefixes, tags: body.tags, all: body.all, purged },
    'purge',
  );
  const what = [...body.urls, ...body.prefixes.map((p) => `${p}*`), ...body.tags.map((t) => `tag:${t}`), ...(body.all ? ['everything'] : [])].join(', ');
  deps.onPurged?.({ at: purge.at, what, purged });
  sendJson(res, 200, { purged, id: purge.id });
}
