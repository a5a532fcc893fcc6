/**
 * The optimization API's listener (Kraken.io's API, so its client libraries work with their base
 * URL pointed here): POST /v1/url, POST /v1/upload, POST /user_status, and the downloads that
 * `kraked_url` names. A second front end on the edge's optimizer; it never imports http/.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { EdgeError } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import { parseNetworks, PublicAddressGuard, PublicFetcher } from '../origin/public-fetch.js';
import { transformLimitsOf } from '../optimize/limits.js';
import { sourceInspector } from '../transform/identify.js';
import type { TransformLimiter } from '../transform/limiter.js';
import { readJson, readUpload } from './body.js';
import { sendApiError, sendJson } from './errors.js';
import { WebInterface } from './web-interface.js';
import { ApiKeys, type ApiKey } from './keys.js';
import { runJob, type JobDeps, type JobResult } from './optimize-job.js';
import { parseOptions, type KrakenOptions } from './options.js';
import { CallbackJobs, type CallbackJob } from './callback-jobs.js';
import { LocalUsage, RedisUsage, type UsageCounter } from './usage.js';
import { newResultId, ResultStore } from './results.js';
import { S3Writer } from './s3-store.js';
import { DELIVERY_POLICY, WebhookSender } from './webhook-delivery.js';
import { BullWebhookQueue, ioredisFor, LocalWebhookQueue, type WebhookQueue } from './webhook-queue.js';
import { redisTargetOf } from '../config/redis-target.js';


export interface ApiServer {
  server: http.Server;
  results: ResultStore;
  /** the web optimizer's results (12 h, one browser session each) */
  webResults: ResultStore;
  keys: ApiKeys;
  webhooks: WebhookQueue;
  /** resolves when the callback jobs accepted so far are optimized and queued for delivery */
  settled(): Promise<void>;
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

export interface ApiOptions {
  limiter: TransformLimiter;
  /** the clock of result expiry and rate limits (tests move it) */
  now?: () => number;
}

/** A warning at most every 10 s: a Redis outage reports every reconnect attempt. */
function warnThrottled(logger: Logger, message: string): (err: Error) => void {
  let last = 0;
  return (err) => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    logger.warn({ err: err.message }, message);
  };
}

function parseUrl(text: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new EdgeError('EDGE_BAD_PARAM', 'url is not a valid URL', { param: 'url' });
  }
}

/** `Authorization: Basic base64(api_key:api_secret)`, for the GET routes that carry no body. */
function basicAuth(req: IncomingMessage): { api_key?: string; api_secret?: string } {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return {};
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const at = text.indexOf(':');
  return at < 0 ? {} : { api_key: text.slice(0, at), api_secret: text.slice(at + 1) };
}

export async function createApiServer(config: Config, logger: Logger, opts: ApiOptions): Promise<ApiServer> {
  const api = config.api;
  const now = opts.now ?? Date.now;
  const results = new ResultStore(path.join(config.cache.dir, 'api'), api.resultTtlSeconds * 1000, now);
  const webResults = new ResultStore(path.join(config.cache.dir, 'web'), api.webInterface.ttlSeconds * 1000, now);
  const keys = new ApiKeys(api.keys);
  const guard = new PublicAddressGuard(parseNetworks(api.allowNetworks));
  const fetcher = new PublicFetcher(guard, config.origin);
  const s3 = new S3Writer(api.s3.endpoint);
  const inspect = sourceInspector(config.limits);
  const sender = new WebhookSender(guard, (key) => keys.signingSecret(key));
  const policy = { ...DELIVERY_POLICY, attempts: api.webhooks.attempts, backoffMs: api.webhooks.backoffMs };
  const target = redisTargetOf(config);
  const usage: UsageCounter = target
    ? new RedisUsage(ioredisFor(target, { failFast: true }), api.requestsPerMinute, warnThrottled(logger, 'API usage: Redis unreachable; quotas and rates not counted meanwhile'), now)
    : await LocalUsage.open(path.join(config.cache.dir, 'api-usage.json'), api.requestsPerMinute, now);
  await usage.ready();
  let webhooks: WebhookQueue;
  if (target) {
    const bull = new BullWebhookQueue(target, policy, warnThrottled(logger, 'webhook queue: Redis unreachable, retrying'));
    bull.startWorker(sender, api.webhooks.concurrency);
    webhooks = bull;
  } else {
    webhooks = await LocalWebhookQueue.open(path.join(config.cache.dir, 'api-webhooks'), sender, policy);
  }
  let publicUrl = api.publicUrl?.replace(/\/+$/, '') ?? '';
  const jobDeps = (): JobDeps => ({
    limiter: opts.limiter,
    // An API caller waits for one result, not a page of them: AVIF gets a little more effort.
    limits: transformLimitsOf(config, 4),
    results,
    s3,
    countColours: api.countColours,
    publicUrl,
  });

  /** auth, rate, quota, options: what every optimization checks before any work. */
  const admit = async (body: unknown): Promise<{ key: ApiKey; options: KrakenOptions }> => {
    const key = keys.authenticate((body as { auth?: unknown } | null)?.auth);
    await usage.admit(key);
    const options = parseOptions(body);
    return { key, options };
  };

  const finish = (res: ServerResponse | undefined, key: ApiKey, options: KrakenOptions, job: JobResult, source: string) => {
    void usage.add(key.key, job.outputs[0]!.original_size);
    const info = job.info;
    // One record per optimization, with what the seed's data mining asked of its logs (docs/API.md).
    logger.info({
      optimization: {
        key: key.key, source, input_format: info.format, progressive: info.progressive, icc: info.hasProfile,
        exif: info.hasExif === true,
        lossy: options.lossy, quality: options.quality, colours: job.colours, width: info.width, height: info.height, frames: info.pages,
        original_size: job.outputs[0]!.original_size, kraked_sizes: job.outputs.map((o) => o.kraked_size),
        kraked_dims: job.dims, ms: Math.round(job.ms),
      },
    }, 'optimized');
    if (res) sendJson(res, 200, job.body);
  };

  /** An image by URL, named after the last part of the path it was fetched from (redirects followed). */
  const fetchSource = async (target: string): Promise<{ bytes: Buffer; name: string | undefined }> => {
    const fetched = await fetcher.get(target, inspect);
    const last = path.posix.basename(fetched.url.pathname);
    let name: string;
    try {
      name = decodeURIComponent(last);
    } catch {
      name = last; // a broken %-escape: the name as it was written
    }
    return { bytes: fetched.body, name: name || undefined };
  };

  /** A callback job: optimized, its result (or its error) queued for delivery. */
  const runCallbackJob = async (job: CallbackJob): Promise<void> => {
    let options: KrakenOptions;
    try {
      options = parseOptions(job.options);
    } catch (err) {
      // Checked when it was accepted: only a record from another version can fail here.
      logger.error({ err, id: job.id }, 'callback job unreadable; dropped');
      return;
    }
    let body: Record<string, unknown>;
    try {
      // Named after the URL it was fetched from in the end, redirects followed, as a wait job is.
      const { bytes, name } = job.upload ? { bytes: job.upload, name: job.fileName } : await fetchSource(options.url!);
      const result = await runJob(bytes, name, options, jobDeps());
      finish(undefined, { key: job.key }, options, result, job.upload ? 'upload' : 'url');
      body = { id: job.id, ...result.body };
    } catch (err) {
      if (err instanceof EdgeError && err.code === 'EDGE_BUSY') throw err; // waits for a turn, then runs again
      const e = err instanceof EdgeError ? err : new EdgeError('EDGE_INTERNAL', 'internal error');
      if (!(err instanceof EdgeError)) logger.error({ err, id: job.id }, 'callback job failed');
      body = { id: job.id, success: false, message: e.message, code: e.code };
    }
    await webhooks.enqueue({ id: job.id, key: job.key, callbackUrl: options.callback_url!, body });
  };
  const callbackJobs = await CallbackJobs.open(path.join(config.cache.dir, 'api-pending'), api.callbackConcurrency, runCallbackJob, (err, id) =>
    logger.error({ err, id }, 'callback job could not be queued for delivery; it runs again at the next start'));

  /** wait: the answer now; callback_url: the id now, the answer to the callback later. */
  const answer = async (res: ServerResponse, key: ApiKey, options: KrakenOptions, body: unknown, source: () => Promise<{ bytes: Buffer; name: string | undefined }>, upload?: { bytes: Buffer; name: string | undefined }) => {
    if (options.callback_url !== undefined) {
      let callback: URL;
      try {
        callback = new URL(options.callback_url);
      } catch {
        throw new EdgeError('EDGE_BAD_PARAM', 'callback_url is not a valid URL', { param: 'callback_url' });
      }
      try {
        await guard.checkResolves(callback);
      } catch (err) {
        throw new EdgeError('EDGE_BAD_PARAM', `callback_url refused: ${(err as Error).message}`, { param: 'callback_url' });
      }
      const { auth: _auth, ...rest } = body as Record<string, unknown>;
      const id = newResultId();
      await callbackJobs.add({ id, key: key.key, options: rest, ...(upload?.name ? { fileName: upload.name } : {}), ...(upload ? { upload: upload.bytes } : {}) });
      sendJson(res, 200, { id });
      return;
    }
    const { bytes, name } = await source();
    finish(res, key, options, await runJob(bytes, name, options, jobDeps()), upload ? 'upload' : 'url');
  };

  const web = new WebInterface({
    results: webResults,
    loopback: ['127.0.0.1', '::1', 'localhost'].includes(api.host),
    token: api.webInterface.token,
    maxUploadBytes: api.maxUploadBytes,
    async optimize(options, source, owner) {
      const key: ApiKey = { key: api.webInterface.key };
      await usage.admit(keys.known(key.key) ?? key);
      const input = 'url' in source
        ? await fetchSource(source.url)
        : source;
      const job = await runJob(input.bytes, input.name, options, { ...jobDeps(), results: webResults, publicUrl: '/web/files', owner });
      finish(undefined, key, options, job, 'web');
      return job.body;
    },
  });

  const routes = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (api.webInterface.enabled && (await web.handle(req, res, url))) return;
    const route = `${req.method} ${url.pathname}`;
    if (route === 'POST /v1/url') {
      const body = await readJson(req);
      const { key, options } = await admit(body);
      const target = options.url;
      if (typeof target !== 'string') throw new EdgeError('EDGE_BAD_PARAM', 'url is required', { param: 'url' });
      guard.checkUrl(parseUrl(target));
      return answer(res, key, options, body, () => fetchSource(target));
    }
    if (route === 'POST /v1/upload') {
      const upload = await readUpload(req, api.maxUploadBytes);
      const { key, options } = await admit(upload.data);
      const bytes = { bytes: upload.file, name: upload.fileName };
      return answer(res, key, options, upload.data, async () => bytes, bytes);
    }
    const webhook = /^\/v1\/webhooks\/([0-9a-f]{32})$/.exec(url.pathname);
    if (req.method === 'GET' && webhook) {
      const key = keys.authenticate(basicAuth(req));
      const log = await webhooks.log(webhook[1]!, key.key);
      if (!log) throw new EdgeError('EDGE_NOT_FOUND', 'no such webhook job for this key');
      return sendJson(res, 200, { success: true, ...log });
    }
    if (route === 'POST /user_status') {
      const key = keys.authenticate(((await readJson(req)) as { auth?: unknown } | null)?.auth);
      const used = (await usage.used(key.key)).bytes;
      return sendJson(res, 200, {
        success: true, active: true, plan_name: 'imgedge',
        quota_total: key.quotaBytes ?? null, quota_used: used, quota_remaining: key.quotaBytes === undefined ? null : Math.max(0, key.quotaBytes - used),
      });
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const found = await results.get(url.pathname);
      if (!found) throw new EdgeError('EDGE_NOT_FOUND', 'no such result, or it has expired');
      res.writeHead(200, {
        'content-type': found.contentType,
        'content-length': found.body.length,
        'cache-control': `private, max-age=${Math.floor(found.remainingMs / 1000)}`,
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : found.body);
      return;
    }
    throw new EdgeError('EDGE_NOT_FOUND', `no route ${route}`);
  };

  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://api.invalid');
    } catch {
      return sendApiError(res, new EdgeError('EDGE_BAD_PATH', 'the request URL cannot be parsed'));
    }
    routes(req, res, url).catch((err: unknown) => {
      const edgeErr = err instanceof EdgeError ? err : new EdgeError('EDGE_INTERNAL', 'internal error');
      if (!(err instanceof EdgeError)) logger.error({ err }, 'API request failed');
      if (res.headersSent) return res.destroy();
      sendApiError(res, edgeErr);
    });
  });
  server.keepAliveTimeout = 5_000;

  return {
    server,
    results,
    webResults,
    keys,
    webhooks,
    settled: () => callbackJobs.settled(),
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(api.port ?? 0, api.host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      if (!publicUrl) publicUrl = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
      results.start(api.sweepIntervalSeconds * 1000);
      webResults.start(api.sweepIntervalSeconds * 1000);
      // Callback jobs accepted before a restart and not yet queued for delivery.
      const resumed = await callbackJobs.resume();
      if (resumed > 0) logger.info({ jobs: resumed }, 'resuming callback jobs accepted before the restart');
      return address;
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await callbackJobs.close();
      await webhooks.close();
      await sender.close();
      await results.close();
      await webResults.close();
      await usage.close();
      await fetcher.close();
    },
  };
}
