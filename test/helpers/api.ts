import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Kraken from 'kraken';
import { createApiServer, type ApiServer } from '../../src/api/server.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/observe/logger.js';
import { TransformLimiter } from '../../src/transform/limiter.js';

export const KEY = { api_key: 'test-key-one', api_secret: 'secret-one-0123456789' };
export const OTHER_KEY = { api_key: 'test-key-two', api_secret: 'secret-two-0123456789' };

/** A config with an API on a free loopback port, the two test keys, loopback reachable (the test origins live there). */
export function apiConfig(cacheDir: string, api: Record<string, unknown> = {}, rest: Record<string, unknown> = {}): Config {
  return parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    cache: { dir: cacheDir, sweepIntervalSeconds: 3600 },
    log: { level: 'silent' },
    api: {
      port: 0,
      keys: [{ key: KEY.api_key, secret: KEY.api_secret }, { key: OTHER_KEY.api_key, secret: OTHER_KEY.api_secret }],
      allowNetworks: ['127.0.0.0/8'],
      ...api,
    },
    ...rest,
    sites: [{ name: 'test', hosts: ['*'], origin: 'http://127.0.0.1:9' }],
  });
}

export interface RunningApi {
  url: string;
  api: ApiServer;
  close(): Promise<void>;
}

export async function startApi(config: Config, now?: () => number, limiter = new TransformLimiter(4, 16)): Promise<RunningApi> {
  const api = await createApiServer(config, createLogger(config.log.level), { limiter, ...(now ? { now } : {}) });
  const address = await api.listen();
  return { url: `http://127.0.0.1:${address.port}`, api, close: () => api.close() };
}

/** Kraken's own client, pointed at `base` as its README's one line does for any other endpoint. */
export function krakenClient(base: string, auth = KEY): Kraken {
  const client = new Kraken(auth);
  client.api = new Kraken.KrakenApiList(base);
  return client;
}

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A webhook receiver on loopback: records every POST; the first `failFirst` answer 500. */
export class Receiver {
  readonly received: Received[] = [];
  failFirst = 0;
  private waiters: Array<() => void> = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() });
      const fail = this.failFirst > 0;
      if (fail) this.failFirst--;
      res.writeHead(fail ? 500 : 200).end();
      for (const w of this.waiters.splice(0)) w();
    });
  });
  url = '';

  static async start(): Promise<Receiver> {
    const r = new Receiver();
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}/hook`;
    return r;
  }

  /** Resolves once `count` POSTs have arrived (or rejects after `ms`). */
  async until(count: number, ms = 20_000): Promise<Received[]> {
    const deadline = Date.now() + ms;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.received.length} of ${count} webhooks arrived in ${ms} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
    return this.received;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
