import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import httpProxy from 'http-proxy';
import { Agent, request, errors as undiciErrors } from 'undici';
import { EdgeError } from '../errors.js';
import { readLimited, tooLarge } from './body-limit.js';
import { SVG_PASSTHROUGH_HEADERS } from './mime.js';
import { checkLiteralHost, guardedLookup, nextHop, originKey, type RedirectPolicy } from './ssrf.js';
import type { FetchOptions, Origin, OriginLimits, OriginResponse } from './types.js';

const USER_AGENT = 'imgedge/0.1';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** SSRF settings of a site: origins besides the base that redirects may lead to, and how many hops. */
export interface OriginSecurity {
  allowedOrigins?: string[];
  maxRedirects?: number;
  /** headers added to HTML passthrough answers (a site's Accept-CH) */
  htmlHeaders?: Record<string, string>;
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** An undici or socket failure as the EdgeError clients see (timeouts apart from the rest). */
export function mapNetworkError(err: unknown, url: string): EdgeError {
  if (err instanceof EdgeError) return err;
  if (
    err instanceof undiciErrors.ConnectTimeoutError ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError
  ) {
    return new EdgeError('EDGE_ORIGIN_TIMEOUT', 'the origin did not answer in time');
  }
  const code = (err as { code?: string }).code ?? 'unknown';
  return new EdgeError('EDGE_ORIGIN_UNREACHABLE', `the origin could not be reached (${code})`, { origin: new URL(url).host });
}

/** An http(s) origin: undici with keep-alive for sources, http-proxy for passthrough. */
export class HttpOrigin implements Origin {
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly proxy: httpProxy;
  private readonly proxyAgent: http.Agent;
  /** hosts of the allowed origins (see ssrf.ts for what that trust covers) */
  private readonly trustedHosts: ReadonlySet<string>;
  private readonly redirects: RedirectPolicy;
  /** passthrough requests whose origin took longer than headersTimeoutMs */
  private readonly timedOut = new WeakSet<IncomingMessage>();

  constructor(baseUrl: string, private readonly limits: OriginLimits, security: OriginSecurity = {}) {
    this.base = new URL(baseUrl);
    const allowed = [this.base, ...(security.allowedOrigins ?? []).map((o) => new URL(o))];
    for (const url of allowed) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`an allowed origin must be http(s): ${url.href}`);
    }
    this.trustedHosts = new Set(allowed.map((u) => u.hostname));
    this.redirects = { allowedOrigins: new Set(allowed.map(originKey)), maxRedirects: security.maxRedirects ?? 3 };
    // SSRF guard (ssrf.ts): every connection, passthrough included, checks the addresses DNS gave it.
    const lookup = guardedLookup(this.trustedHosts);
    this.agent = new Agent({
      connect: { timeout: limits.connectTimeoutMs, lookup },
      headersTimeout: limits.headersTimeoutMs,
      bodyTimeout: limits.bodyTimeoutMs,
      keepAliveTimeout: 30_000,
      connections: 64,
    });
    // Without an agent http-proxy asks the origin for `Connection: close` and hands that to the client.
    const agentOptions = { keepAlive: true, keepAliveMsecs: 30_000, maxSockets: 64, lookup };
    this.proxyAgent = this.base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.proxy = httpProxy.createProxyServer({ target: this.base.origin, changeOrigin: true, xfwd: true, agent: this.proxyAgent });
    this.proxy.on('proxyReq', (proxyReq, req) => {
      proxyReq.setTimeout(limits.headersTimeoutMs, () => {
        this.timedOut.add(req);
        proxyReq.destroy();
      });
    });
    // An origin that dies mid-body must not leave the client waiting for bytes that never come.
    this.proxy.on('proxyRes', (proxyRes, _req, res) => {
      const type = (proxyRes.headers['content-type'] ?? '').toLowerCase();
      if (type.startsWith('image/svg')) Object.assign(proxyRes.headers, SVG_PASSTHROUGH_HEADERS);
      if (security.htmlHeaders && type.startsWith('text/html')) Object.assign(proxyRes.headers, security.htmlHeaders);
      proxyRes.on('aborted', () => res.destroy());
      proxyRes.on('error', () => res.destroy());
    });
  }

  /** The origin URL for a request path: the site's base path joined with it. */
  private urlFor(pathAndQuery: string): string {
    const basePath = this.base.pathname.replace(/\/$/, '');
    return `${this.base.origin}${basePath}${pathAndQuery}`;
  }

  /** GET only; redirects are followed here, each hop held to the allowed origins and checked again. */
  async fetch(pathAndQuery: string, options: FetchOptions = {}): Promise<OriginResponse> {
    let url = new URL(this.urlFor(pathAndQuery));
    const { inspect } = options;
    const requestHeaders: Record<string, string> = { 'user-agent': USER_AGENT, accept: 'image/*,*/*;q=0.8' };
    if (options.ifNoneMatch) requestHeaders['if-none-match'] = options.ifNoneMatch;
    if (options.ifModifiedSince) requestHeaders['if-modified-since'] = options.ifModifiedSince;
    if (options.acceptLanguage) requestHeaders['accept-language'] = options.acceptLanguage;
    try {
      let res = await this.get(url, requestHeaders);
      for (let hop = 1; REDIRECT_STATUSES.has(res.statusCode); hop++) {
        const location = res.headers.location;
        await res.body.dump();
        url = nextHop(url, Array.isArray(location) ? location[0] : location, hop, this.redirects);
        res = await this.get(url, requestHeaders);
      }
      const headers = flattenHeaders(res.headers);
      const declared = Number(headers['content-length']);
      if (Number.isFinite(declared) && declared > this.limits.maxSourceBytes) {
        res.body.destroy();
        throw tooLarge(this.limits.maxSourceBytes);
      }
      // Only a body that is to be used is inspected: an error page is not the image.
      const inspectHead = inspect && res.statusCode === 200 ? (head: Buffer) => inspect(head, headers) : undefined;
      const body = await readLimited(res.body, this.limits.maxSourceBytes, inspectHead);
      return { status: res.statusCode, headers, body };
    } catch (err) {
      throw mapNetworkError(err, url.href);
    }
  }

  private get(url: URL, headers: Record<string, string>) {
    checkLiteralHost(url, this.trustedHosts);
    return request(url, { method: 'GET', dispatcher: this.agent, headers, maxRedirections: 0 } as Parameters<typeof request>[1]);
  }

  passthrough(req: IncomingMessage, res: ServerResponse, pathAndQuery: string, failed: (err: EdgeError) => void): void {
    req.url = `${this.base.pathname.replace(/\/$/, '')}${pathAndQuery}`;
    this.proxy.web(req, res, { target: this.base.origin }, (err) => {
      const timedOut = this.timedOut.has(req);
      failed(timedOut ? new EdgeError('EDGE_ORIGIN_TIMEOUT', 'the origin did not answer in time') : mapNetworkError(err, this.base.href));
    });
  }

  async close(): Promise<void> {
    this.proxy.close();
    this.proxyAgent.destroy();
    await this.agent.close();
  }
}
