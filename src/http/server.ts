import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os, { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { SingleFlight } from '../cache/single-flight.js';
import type { PurgeableStore } from '../cache/types.js';
import type { PurgeEpoch } from '../purge/epoch.js';
import type { NodePresence, PurgeBus } from '../purge/types.js';
import type { Config } from '../config/schema.js';
import { infoRecordWriter, type Logger } from '../observe/logger.js';
import { BackgroundQueue, foregroundLimitFor } from '../transform/background-queue.js';
import { TransformLimiter } from '../transform/limiter.js';
import { EdgeMetrics } from '../observe/metrics.js';
import { isRasterImagePath, isSvgPath } from '../origin/mime.js';
import { sourceInspector } from '../transform/identify.js';
import { onlyAliasParams, parseParams } from '../transform/params.js';
import { fontTable } from '../transform/text.js';
import { applyClientHints } from './client-hints.js';
import { handleDashboard } from './dashboard-route.js';
import { handleEdgeRoute } from './edge-routes.js';
import { LiveStats } from '../observe/live-stats.js';
import { verifySignature } from './signature.js';
import { checkVariantBounds } from '../optimize/variant-bounds.js';
import { EdgeError } from '../errors.js';
import { HttpError } from './errors.js';
import { answerKnownVariant, handleImage, lookup, lookupInMemory, type ImageDeps, type PriorLookup } from './image-handler.js';
import { KnownVariants, type KnownVariant } from './known-variants.js';
import { isPlainHit, type RequestLog } from './request-log.js';
import { sendError } from './respond.js';
import type { Source } from '../optimize/source.js';
import { transformLimitsOf } from '../optimize/limits.js';
import { SiteRegistry } from '../optimize/sites.js';
import type { Variant } from '../optimize/variant.js';

const SVG_DEFAULT = new URLSearchParams('fm=png');
/** A page's request: no transform asked. */
const NO_TRANSFORM = parseParams(new URLSearchParams());
/** How often a node says it is alive (the node list keeps those seen within 15 s). */
const NODE_ANNOUNCE_MS = 5_000;
/** Request targets remembered for the hit fast path (a few hundred bytes each). */
const KNOWN_VARIANTS = 20_000;

function parseRequestUrl(raw: string): URL {
  try {
    return new URL(raw, 'http://edge.invalid');
  } catch {
    throw new EdgeError('EDGE_BAD_PATH', 'the request URL cannot be parsed');
  }
}

export interface Edge {
  server: http.Server;
  metrics: EdgeMetrics;
  background: BackgroundQueue;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests (and their cache writes) finish, then closes. */
  close(): Promise<void>;
}

/** Wires the stages into one HTTP server. */
/** The transform turns of a process: the edge's misses and the optimization API share them. */
export function transformLimiterFor(config: Config): TransformLimiter {
  return new TransformLimiter(config.limits.transformConcurrency ?? 2 * availableParallelism(), config.limits.transformQueueLength);
}

export function createEdgeServer(
  config: Config,
  cache: PurgeableStore,
  logger: Logger,
  bus: PurgeBus,
  epoch: PurgeEpoch,
  limiter: TransformLimiter = transformLimiterFor(config),
): Edge {
  const sites = new SiteRegistry(config);
  const fonts = fontTable(config.text.fonts);
  const background = new BackgroundQueue({
    maxQueued: config.limits.backgroundQueueLength,
    concurrency: 1,
    // Background work starts only while a core is left over for requests.
    foregroundLimit: foregroundLimitFor(limiter.concurrency, availableParallelism()),
    onError: (key, err) => logger.warn({ err, key }, 'background encode failed'),
  });
  const metrics = new EdgeMetrics(cache, background, bus);
  const deps: ImageDeps = {
    epoch,
    knownVariants: new KnownVariants(KNOWN_VARIANTS),
    background,
    limiter,
    onBackgroundDropped: () => metrics.backgroundDropped.inc(),
    cache,
    metrics,
    flights: new SingleFlight<Source>(),
    variantFlights: new SingleFlight<Variant>(),
    // A site's formats.avifEffort replaces this per request (optimize/variant.ts).
    limits: transformLimitsOf(config, 2),
    inspectSource: sourceInspector(config.limits),
    observeTransform: (format, seconds) => metrics.transformSeconds.observe({ format }, seconds),
    async storeEntry(entry, startedAt) {
      if (epoch.value !== startedAt) {
        metrics.storesSkippedForPurge.inc();
        return;
      }
      try {
        await cache.put(entry);
      } catch (err) {
        metrics.cacheWriteErrors.inc();
        logger.warn({ err, key: entry.meta.key }, 'cache write failed; served without caching');
      }
    },
    unverifiedBefore: () => bus.unverifiedBefore(),
  };
  const logRequest = infoRecordWriter(logger, 'request');
  const logHits = config.log.hits;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const liveStats = new LiveStats();
  const streams = new Set<ServerResponse>();
  const startedAt = Date.now();
  // This node's presence for the dashboards of every node (through Redis; itself alone without).
  let nodeName = `${os.hostname()}:${config.server.port}`;
  let nodes: NodePresence[] = [];
  const announce = () =>
    bus.nodes({ name: nodeName, seen: Date.now(), startedAt, requests: liveStats.requests }).then(
      (found) => void (nodes = found),
      () => undefined,
    );
  const presence = setInterval(announce, NODE_ANNOUNCE_MS);
  presence.unref();
  const dashboard = { stats: liveStats, limiter, cache, cacheBudget: config.cache.maxBytes, sites, token: config.admin.token, streams, nodes: () => nodes };

  async function route(req: IncomingMessage, res: ServerResponse, log: RequestLog, target: string, known: KnownVariant | undefined, prior: PriorLookup | undefined): Promise<void> {
    if (known && !prior) {
      prior = { key: known.key, lookup: await lookup(deps, known.key) };
      if (answerKnownVariant(req, res, known, prior.lookup, log, deps)) return;
    }
    const rawUrl = req.url ?? '/';
    if (rawUrl.length > config.limits.maxUrlLength) throw new HttpError('EDGE_BAD_PATH', 414, 'the URL is too long');
    const url = parseRequestUrl(rawUrl);
    log.path = url.pathname;
    // WHATWG parsing already resolved `..`, `%2e%2e` and backslashes; an encoded NUL, slash or
    // backslash would reach an origin that decodes it as a path of its own choosing.
    if (/%(?:00|2f|5c)/i.test(url.pathname)) throw new EdgeError('EDGE_BAD_PATH', 'the path contains an encoded NUL, slash or backslash');
    // The playground's previews: an image of a site named in the path, as that site serves it
    // (the dashboard's access rule; no signature needed, the operator sees the signed URL).
    const preview = /^\/_edge\/ui\/preview\/([^/]+)(\/.*)$/.exec(url.pathname);
    if (preview) {
      await handleDashboard(req, res, url, dashboard, async () => {
        const site = sites.byName(decodeURIComponent(preview[1]!));
        if (!site) throw new EdgeError('EDGE_NOT_FOUND', 'no such site');
        const target = new URL(`${preview[2]}${url.search}`, 'http://edge.invalid');
        log.site = site.config.name;
        log.path = target.pathname;
        const parsed = parseParams(target.searchParams, fonts);
        if (!parsed.hasTransform) throw new EdgeError('EDGE_BAD_PARAM', 'a preview needs at least one parameter', { param: 'w' });
        checkVariantBounds(parsed.params, site.config.bounds);
        await handleImage(req, res, { site, url: target, id: `preview:${site.config.name}${target.pathname}${target.search}` }, parsed, log, deps, undefined);
      });
      return;
    }
    if (url.pathname.startsWith('/_edge/')) {
      if (url.pathname.startsWith('/_edge/ui/')) {
        await handleDashboard(req, res, url, dashboard);
        return;
      }
      await handleEdgeRoute(req, res, url.pathname, { cacheDir: config.cache.dir, metrics, purge: { token: config.purge.token, sites, bus, logger, onPurged: (p) => liveStats.purged(p) } });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new EdgeError('EDGE_METHOD_NOT_ALLOWED', `${req.method} is not served; use GET or HEAD`);
    }
    const site = sites.siteFor(req.headers.host);
    if (!site) throw new EdgeError('EDGE_NOT_FOUND', 'no site is configured for this host');
    log.site = site.config.name;
    // imgix's aliases (width, f, …) alone make an image request only of an image's path.
    const pageQuery = !isRasterImagePath(url.pathname) && onlyAliasParams(url.searchParams);
    let parsed = pageQuery ? NO_TRANSFORM : parseParams(url.searchParams, fonts);
    // A site's defaults stand in for the parameters of a raster image asked for with none.
    if (!parsed.hasTransform && isRasterImagePath(url.pathname)) parsed = parseParams(site.defaults, fonts);
    // SVG is never served as a document from the edge's host: it is rasterized by default.
    if (!parsed.hasTransform && isSvgPath(url.pathname)) parsed = parseParams(site.defaults.size > 0 ? site.defaults : SVG_DEFAULT, fonts);
    // Every image URL of a signing site carries `s` (checked over the request target exactly as
    // sent: a parsed URL re-encodes some characters); pages and assets pass unsigned.
    const signed = site.config.signing.keys.length > 0;
    if (signed && (parsed.hasTransform || isRasterImagePath(url.pathname))) verifySignature(rawUrl, site.config.signing.keys);
    if (!parsed.hasTransform) {
      log.cache = 'BYPASS';
      res.setHeader('x-cache', 'BYPASS');
      site.origin.passthrough(req, res, `${url.pathname}${url.search}`, (err) => sendError(res, err));
      return;
    }
    const hinted = applyClientHints(req, parsed, site, url.searchParams.has('dpr'));
    checkVariantBounds(hinted.parsed.params, site.config.bounds);
    await handleImage(req, res, { site, url, id: target, vary: hinted.vary }, hinted.parsed, log, deps, prior);
  }

  const server = http.createServer((req, res) => {
    const started = performance.now();
    const log: RequestLog = { method: req.method ?? 'GET', path: req.url ?? '/' };
    inFlight++;
    res.on('close', () => {
      // 499 (nginx's "client closed request") when the client left before the answer was sent.
      log.status = res.writableFinished ? res.statusCode : 499;
      log.totalMs = Math.round((performance.now() - started) * 10) / 10;
      metrics.countRequest(log.status, log.cache ?? 'NONE');
      if (log.bytesOut !== undefined) metrics.responseBytes.inc(log.bytesOut);
      if (!log.path.startsWith('/_edge/')) liveStats.observe(log);
      if (logHits || !isPlainHit(log)) logRequest(log);
      if (--inFlight === 0) drained?.();
    });
    const fail = (err: unknown) => {
      const edgeErr = err instanceof EdgeError ? err : new EdgeError('EDGE_INTERNAL', 'internal error');
      if (!(err instanceof EdgeError)) logger.error({ err, path: log.path }, 'unexpected error');
      log.error = edgeErr.code;
      sendError(res, edgeErr);
    };
    const target = KnownVariants.targetOf(req);
    const known = req.method === 'GET' || req.method === 'HEAD' ? deps.knownVariants.get(target) : undefined;
    // A repeat whose entry the memory tier holds is answered before this callback returns; one it
    // holds expired goes the full way with that lookup (each request looks its key up once).
    const inMemory = known && lookupInMemory(deps, known.key);
    const prior = known && inMemory ? { key: known.key, lookup: inMemory } : undefined;
    try {
      if (known && prior && answerKnownVariant(req, res, known, prior.lookup, log, deps)) return;
    } catch (err) {
      fail(err);
      return;
    }
    route(req, res, log, target, known, prior).catch(fail);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  return {
    server,
    metrics,
    background,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          nodeName = `${os.hostname()}:${address.port}`;
          void announce();
          resolve(address);
        });
      });
    },
    async close() {
      clearInterval(presence);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (const s of streams) s.end();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => (drained = resolve)),
          new Promise((resolve) => setTimeout(resolve, config.server.shutdownTimeoutMs).unref()),
        ]);
      }
      server.closeAllConnections();
      await closed;
      await background.stop();
      await sites.close();
    },
  };
}
