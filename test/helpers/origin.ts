import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OriginRoute {
  status?: number;
  headers?: Record<string, string>;
  body: Buffer | string;
  /** ms to wait before answering headers */
  delayMs?: number;
  /** send the body chunked, without Content-Length (a server that does not say how big) */
  chunked?: boolean;
  /** send this many body bytes, then reset the connection (a server that dies mid-body) */
  resetAfterBytes?: number;
  /** send the body in 16 KiB pieces this many ms apart (a slow, large download) */
  trickleMs?: number;
  /** a body per Accept-Language value (the first is the default) */
  byLanguage?: Record<string, Buffer>;
}

/** A real HTTP origin on loopback that counts the requests it gets, per path. */
export class TestOrigin {
  readonly routes = new Map<string, OriginRoute>();
  readonly hits = new Map<string, number>();
  /** body bytes written per path before the response ended or the client went away */
  readonly bytesSent = new Map<string, number>();
  /** conditional requests answered 304 */
  notModified = 0;
  /** request headers of the last request per path */
  readonly lastHeaders = new Map<string, http.IncomingHttpHeaders>();
  private server = http.createServer((req, res) => this.answer(req, res));
  url = '';

  static async start(): Promise<TestOrigin> {
    const origin = new TestOrigin();
    await new Promise<void>((resolve) => origin.server.listen(0, '127.0.0.1', resolve));
    origin.url = `http://127.0.0.1:${(origin.server.address() as AddressInfo).port}`;
    return origin;
  }

  set(path: string, route: OriginRoute): void {
    this.routes.set(path, route);
  }

  count(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  get total(): number {
    return [...this.hits.values()].reduce((a, b) => a + b, 0);
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    this.hits.set(path, this.count(path) + 1);
    this.lastHeaders.set(path, req.headers);
    const route = this.routes.get(path) ?? this.routes.get(path.split('?')[0]!);
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such file');
      return;
    }
    // Conditional requests: a matching ETag is a 304, as any HTTP origin answers.
    const etag = route.headers?.etag;
    if (etag !== undefined && req.headers['if-none-match'] === etag) {
      this.notModified++;
      res.writeHead(304, { etag, ...(route.headers?.['cache-control'] ? { 'cache-control': route.headers['cache-control'] } : {}) });
      res.end();
      return;
    }
    const send = () => {
      const languages = route.byLanguage ?? {};
      const language = req.headers['accept-language'] ?? '';
      const chosen = languages[language] ?? Object.values(languages)[0] ?? route.body;
      const body = typeof chosen === 'string' ? Buffer.from(chosen) : chosen;
      const length = route.chunked ? {} : { 'content-length': body.length };
      res.writeHead(route.status ?? 200, { ...length, ...route.headers });
      if (req.method === 'HEAD') res.end();
      else if (route.trickleMs !== undefined) this.trickle(path, res, body, route.trickleMs);
      else if (route.resetAfterBytes !== undefined) {
        res.write(body.subarray(0, route.resetAfterBytes), () => setTimeout(() => res.socket?.destroy(), 50));
      } else if (route.chunked) {
        for (let i = 0; i < body.length; i += 64 * 1024) res.write(body.subarray(i, i + 64 * 1024));
        res.end();
      } else res.end(body);
    };
    if (route.delayMs) setTimeout(send, route.delayMs);
    else send();
  }

  private trickle(path: string, res: http.ServerResponse, body: Buffer, ms: number): void {
    let sent = 0;
    const next = () => {
      if (res.destroyed || sent >= body.length) {
        res.end();
        return;
      }
      const piece = body.subarray(sent, sent + 16 * 1024);
      sent += piece.length;
      this.bytesSent.set(path, sent);
      res.write(piece);
      setTimeout(next, ms);
    };
    next();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
