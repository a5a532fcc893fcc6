/**
 * The operator dashboard at /_edge/ui/: a page, its assets (the chart library, uPlot, served from
 * the project's own node_modules: no third-party CDN at run time) and a server-sent event stream
 * of the live numbers, one event a second. Reachable under the same rule as the other /_edge/
 * routes (nginx lets only ADMIN_NETS through), never under a site's public host name, and with
 * `admin.token` (IMGEDGE_ADMIN_TOKEN) only after `?token=` once (then a cookie).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { CacheStore } from '../cache/types.js';
import { EdgeError } from '../errors.js';
import type { LiveStats } from '../observe/live-stats.js';
import type { NodePresence } from '../purge/types.js';
import type { SiteRegistry } from '../optimize/sites.js';
import type { TransformLimiter } from '../transform/limiter.js';
import { HttpError } from './errors.js';
import { sendJson } from './respond.js';
import { signPath } from './signature.js';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const require = createRequire(import.meta.url);
const STATIC = new URL('../../../src/ui/static/', import.meta.url);
const ASSETS: Record<string, { file: string | URL; type: string }> = {
  '/_edge/ui/': { file: new URL('dashboard.html', STATIC), type: 'text/html; charset=utf-8' },
  '/_edge/ui/dashboard.css': { file: new URL('dashboard.css', STATIC), type: 'text/css; charset=utf-8' },
  '/_edge/ui/dashboard.js': { file: new URL('../ui/dashboard-page.js', import.meta.url), type: 'text/javascript; charset=utf-8' },
  '/_edge/ui/playground': { file: new URL('playground.html', STATIC), type: 'text/html; charset=utf-8' },
  '/_edge/ui/playground.css': { file: new URL('playground.css', STATIC), type: 'text/css; charset=utf-8' },
  '/_edge/ui/playground.js': { file: new URL('../ui/playground-page.js', import.meta.url), type: 'text/javascript; charset=utf-8' },
  '/_edge/ui/uplot.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/_edge/ui/uplot.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};
const COOKIE = 'imgedge_admin';
const hash = (s: string) => createHash('sha256').update(s).digest('hex');

export interface DashboardDeps {
  stats: LiveStats;
  limiter: TransformLimiter;
  cache: Pick<CacheStore, 'stats'>;
  cacheBudget: number;
  sites: SiteRegistry;
  token: string | undefined;
  /** open event streams, ended when the edge shuts down */
  streams: Set<ServerResponse>;
  /** the nodes seen alive lately (through Redis), this one included */
  nodes(): NodePresence[];
}

function cookie(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === COOKIE) return part.slice(at + 1).trim();
  }
  return undefined;
}

const same = (a: string, b: string) => timingSafeEqual(Buffer.from(hash(a)), Buffer.from(hash(b)));

/** A site's public host name never serves the dashboard: only the node's own address does. */
function publicHost(req: IncomingMessage, sites: SiteRegistry): boolean {
  const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
  return sites.all.some((s) => s.config.hosts.some((h) => h !== '*' && h.toLowerCase() === host));
}

/** The dashboard's and playground's routes; `preview` answers a playground preview once access is checked. */
export async function handleDashboard(req: IncomingMessage, res: ServerResponse, url: URL, deps: DashboardDeps, preview?: () => Promise<void>): Promise<void> {
  if (publicHost(req, deps.sites)) throw new EdgeError('EDGE_NOT_FOUND', 'no such page');
  const setCookie: string[] = [];
  if (deps.token !== undefined) {
    const given = url.searchParams.get('token');
    if (given !== null) {
      if (!same(given, deps.token)) throw new HttpError('EDGE_UNAUTHORIZED', 401, 'wrong token');
      setCookie.push(`${COOKIE}=${hash(deps.token)}; HttpOnly; SameSite=Strict; Path=/_edge/ui/`);
    } else {
      const held = cookie(req);
      if (!held || !same(held, hash(deps.token))) throw new HttpError('EDGE_UNAUTHORIZED', 401, 'open the dashboard with its token: /_edge/ui/?token=…');
    }
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new EdgeError('EDGE_METHOD_NOT_ALLOWED', 'the dashboard is read-only');
  if (preview) return preview();
  if (url.pathname === '/_edge/ui/stream') return stream(req, res, deps);
  if (url.pathname === '/_edge/ui/sites') return sendJson(res, 200, siteList(deps.sites));
  if (url.pathname === '/_edge/ui/sign') return sendJson(res, 200, signed(url, deps.sites));
  const asset = ASSETS[url.pathname];
  if (!asset) throw new EdgeError('EDGE_NOT_FOUND', `no dashboard route ${url.pathname}`);
  const body = await readFile(asset.file);
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': body.length,
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    ...(setCookie.length > 0 ? { 'set-cookie': setCookie } : {}),
  });
  res.end(body);
}

/** The sites for the playground: name, the public URL base, whether its URLs are signed. */
function siteList(sites: SiteRegistry) {
  return sites.all.map((s) => {
    const host = s.config.hosts.find((h) => h !== '*');
    return { name: s.config.name, base: host ? `https://${host}` : '', signed: s.config.signing.keys.length > 0 };
  });
}

/** `?site=…&url=/path?query` (repeatable): each URL as that site's clients must send it, signed with its first key where it signs. */
function signed(url: URL, sites: SiteRegistry): { urls: string[] } {
  const site = sites.byName(url.searchParams.get('site') ?? '');
  if (!site) throw new EdgeError('EDGE_NOT_FOUND', 'no such site');
  const key = site.config.signing.keys[0];
  const urls = url.searchParams.getAll('url').slice(0, 20).map((u) => {
    if (!u.startsWith('/')) throw new EdgeError('EDGE_BAD_PARAM', 'url is a path and query', { param: 'url' });
    return key ? signPath(u, key) : u;
  });
  return { urls };
}

/** One event a second with the live numbers, until the page goes away. */
function stream(req: IncomingMessage, res: ServerResponse, deps: DashboardDeps): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  const send = () => {
    const cache = deps.cache.stats();
    const event = {
      ...deps.stats.snapshot(),
      queue: { running: deps.limiter.active, waiting: deps.limiter.queued },
      disk: { bytes: cache.bytes, budget: deps.cacheBudget, entries: cache.entries },
      nodes: deps.nodes(),
    };
    res.write(`data: ${JSON.stringify(event)}\n\n`);
  };
  send();
  const timer = setInterval(send, 1000);
  deps.streams.add(res);
  res.on('close', () => {
    clearInterval(timer);
    deps.streams.delete(res);
  });
}
