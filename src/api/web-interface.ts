/**
 * The web optimizer (issue 13, part 1): the page at GET / of the API listener, and the routes its
 * script calls. The same optimizer as the API (runJob), results kept `webInterface.ttlSeconds`
 * (12 h) in a tree of their own and readable only by the browser session that made them.
 *
 * Access: open where the listener is on loopback; elsewhere only with `webInterface.token`, given
 * once as `/?token=…` (then a cookie). Every page carries a strict Content-Security-Policy (no
 * inline script or style). Forms are CSRF-safe: POSTs must come from the page's own origin, carry
 * a header a cross-site form cannot set, and the session cookie is SameSite=Strict.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { zipSync } from 'fflate';
import { EdgeError } from '../errors.js';
import { readForm, readJson } from './body.js';
import { ApiError, sendJson } from './errors.js';
import { parseOptions, type KrakenOptions } from './options.js';
import type { ResultStore } from './results.js';

export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const PAGE_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const STATIC = new URL('../../../src/ui/static/', import.meta.url);
const SCRIPT = new URL('../ui/optimizer-page.js', import.meta.url);
const ASSETS: Record<string, { file: URL; type: string }> = {
  '/': { file: new URL('optimizer.html', STATIC), type: 'text/html; charset=utf-8' },
  '/ui/optimizer.css': { file: new URL('optimizer.css', STATIC), type: 'text/css; charset=utf-8' },
  '/ui/optimizer.js': { file: SCRIPT, type: 'text/javascript; charset=utf-8' },
};

const SESSION_COOKIE = 'imgedge_web';
const LOGIN_COOKIE = 'imgedge_web_login';
const FILES = '/web/files';
const MAX_ZIP_FILES = 200;

export interface WebDeps {
  results: ResultStore;
  /** open without a token: the listener is on loopback */
  loopback: boolean;
  token: string | undefined;
  maxUploadBytes: number;
  /** runs one optimization for the web (the API's admission and runJob, counted under the web key) */
  optimize(options: KrakenOptions, source: { bytes: Buffer; name: string | undefined } | { url: string }, owner: string): Promise<Record<string, unknown>>;
}

function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0) out[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return out;
}

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(hash(a));
  const y = Buffer.from(hash(b));
  return timingSafeEqual(x, y);
}

export class WebInterface {
  constructor(private readonly deps: WebDeps) {}

  /** Whether this listener serves the page at all (off where exposed without a token). */
  get enabled(): boolean {
    return this.deps.loopback || this.deps.token !== undefined;
  }

  private loggedIn(req: IncomingMessage): boolean {
    if (this.deps.token === undefined) return true;
    const cookie = cookies(req)[LOGIN_COOKIE];
    return cookie !== undefined && sameSecret(cookie, hash(this.deps.token));
  }

  /** The session's owner hash; undefined when the request has no session. */
  private owner(req: IncomingMessage): string | undefined {
    const session = cookies(req)[SESSION_COOKIE];
    return session && /^[0-9a-f]{32}$/.test(session) ? hash(session) : undefined;
  }

  /** POSTs from the page only: its own origin, and a header no cross-site form can send. */
  private checkSameOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    const host = req.headers.host;
    const fromPage = req.headers['x-imgedge-web'] === '1';
    if (!fromPage || !host || (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`)) {
      throw new ApiError('EDGE_UNAUTHORIZED', 403, 'requests to the web optimizer come from its own page');
    }
  }

  /** Answers the web optimizer's routes; false for any other request. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const asset = ASSETS[url.pathname];
    const isWebRoute = asset !== undefined || url.pathname.startsWith('/web/');
    if (!isWebRoute) return false;
    if (!this.enabled) throw new EdgeError('EDGE_NOT_FOUND', 'the web optimizer is off: set api.webInterface.token to open it beyond loopback');
    if (req.method === 'GET' && asset) {
      await this.page(req, res, url, asset);
      return true;
    }
    if (!this.loggedIn(req)) throw new ApiError('EDGE_UNAUTHORIZED', 401, 'open the web optimizer with its token first');
    const owner = this.owner(req);
    if (req.method === 'GET' && url.pathname.startsWith(`${FILES}/`)) {
      const found = owner && (await this.deps.results.get(url.pathname.slice(FILES.length), owner));
      if (!found) throw new EdgeError('EDGE_NOT_FOUND', 'no such result for this browser, or it has expired');
      res.writeHead(200, { ...PAGE_HEADERS, 'content-type': found.contentType, 'content-length': found.body.length, 'cache-control': 'private, no-store' });
      res.end(found.body);
      return true;
    }
    if (req.method === 'POST' && url.pathname === '/web/optimize') {
      this.checkSameOrigin(req);
      if (!owner) throw new ApiError('EDGE_UNAUTHORIZED', 403, 'no session: reload the page');
      const form = await readForm(req, this.deps.maxUploadBytes, false);
      const data = (form.data ?? {}) as Record<string, unknown>;
      if (data.callback_url !== undefined || data.s3_store !== undefined) throw new EdgeError('EDGE_BAD_PARAM', 'the web optimizer answers at once; callback_url and s3_store are for the API', { param: 'data' });
      const options = parseOptions({ ...data, wait: true });
      const source = form.file ? { bytes: form.file, name: form.fileName } : typeof options.url === 'string' ? { url: options.url } : undefined;
      if (!source) throw new EdgeError('EDGE_BAD_PARAM', 'send a file or a url', { param: 'file' });
      sendJson(res, 200, await this.deps.optimize(options, source, owner));
      return true;
    }
    if (req.method === 'POST' && url.pathname === '/web/zip') {
      this.checkSameOrigin(req);
      const files = ((await readJson(req)) as { files?: unknown }).files;
      if (!owner || !Array.isArray(files) || files.length === 0 || files.length > MAX_ZIP_FILES || !files.every((f) => typeof f === 'string')) {
        throw new EdgeError('EDGE_BAD_PARAM', `files: 1 to ${MAX_ZIP_FILES} result paths of this browser`, { param: 'files' });
      }
      const entries: Record<string, [Uint8Array, { level: 0 }]> = {};
      for (const file of files as string[]) {
        const found = file.startsWith(`${FILES}/`) ? await this.deps.results.get(file.slice(FILES.length), owner) : undefined;
        if (!found) throw new EdgeError('EDGE_NOT_FOUND', `no such result for this browser: ${file}`);
        entries[uniqueName(entries, file.slice(file.lastIndexOf('/') + 1))] = [found.body, { level: 0 }];
      }
      // Images are compressed already: stored, not deflated.
      const zip = Buffer.from(zipSync(entries));
      res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'application/zip', 'content-length': zip.length, 'content-disposition': 'attachment; filename="optimized.zip"' });
      res.end(zip);
      return true;
    }
    throw new EdgeError('EDGE_NOT_FOUND', `no route ${req.method} ${url.pathname}`);
  }

  private async page(req: IncomingMessage, res: ServerResponse, url: URL, asset: { file: URL; type: string }): Promise<void> {
    const headers: Record<string, string | string[]> = { ...PAGE_HEADERS, 'content-type': asset.type };
    const set: string[] = [];
    const token = url.searchParams.get('token');
    if (this.deps.token !== undefined && token !== null) {
      if (!sameSecret(token, this.deps.token)) throw new ApiError('EDGE_UNAUTHORIZED', 401, 'wrong token');
      set.push(`${LOGIN_COOKIE}=${hash(this.deps.token)}; HttpOnly; SameSite=Strict; Path=/`);
    } else if (!this.loggedIn(req)) {
      throw new ApiError('EDGE_UNAUTHORIZED', 401, 'open the web optimizer with its token: /?token=…');
    }
    if (url.pathname === '/' && !this.owner(req)) set.push(`${SESSION_COOKIE}=${randomBytes(16).toString('hex')}; HttpOnly; SameSite=Strict; Path=/`);
    if (set.length > 0) headers['set-cookie'] = set;
    const body = await readFile(asset.file);
    res.writeHead(200, { ...headers, 'content-length': body.length });
    res.end(body);
  }
}

function uniqueName(taken: Record<string, unknown>, name: string): string {
  if (!(name in taken)) return name;
  const dot = name.lastIndexOf('.');
  for (let i = 2; ; i++) {
    const candidate = dot > 0 ? `${name.slice(0, dot)}-${i}${name.slice(dot)}` : `${name}-${i}`;
    if (!(candidate in taken)) return candidate;
  }
}
