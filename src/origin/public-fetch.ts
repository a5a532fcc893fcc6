/**
 * Fetches any http(s) URL a caller names (the optimization API's `url`, a webhook's callback),
 * held to public addresses: every DNS answer and IP literal is checked, at connect time and on
 * every redirect, unless the operator lists the network in `allowNetworks` (CIDRs). Unlike a
 * site's origin there is no trusted name: a name is only as good as the addresses it resolves to.
 */
import dns from 'node:dns';
import { BlockList, isIP, isIPv4, type LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { EdgeError } from '../errors.js';
import { readLimited } from './body-limit.js';
import { mapNetworkError } from './http-origin.js';
import { isNonPublicAddress, refusingLookup } from './ssrf.js';
import type { HeadInspector, OriginLimits, OriginResponse } from './types.js';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const USER_AGENT = 'imgedge-api/0.1';

/** "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). Throws on anything else. */
export function parseNetworks(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits] = cidr.trim().split('/') as [string, string | undefined];
    const family = isIP(address);
    if (family === 0) throw new Error(`not a network: ${cidr}`);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new Error(`not a network: ${cidr}`);
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

const forbidden = (what: string): EdgeError => new EdgeError('EDGE_FORBIDDEN_SOURCE', `${what} is not a public address`);

export class PublicAddressGuard {
  constructor(private readonly allowed: BlockList) {}

  allows(address: string): boolean {
    const bare = address.replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare) !== 0 && this.allowed.check(bare, isIPv4(bare) ? 'ipv4' : 'ipv6')) return true;
    return !isNonPublicAddress(bare);
  }

  /** A URL that can be asked for at all: http(s), and an IP literal host must be allowed. */
  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EdgeError('EDGE_BAD_PARAM', 'only http(s) URLs can be fetched', { param: 'url' });
    if (url.username || url.password) throw new EdgeError('EDGE_BAD_PARAM', 'URLs with credentials are not fetched', { param: 'url' });
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) !== 0 && !this.allows(host)) throw forbidden(url.host);
  }

  /** Resolves a name now (for a check made before any connection, e.g. when a webhook is accepted). */
  async checkResolves(url: URL, resolve: typeof dns.promises.lookup = dns.promises.lookup): Promise<void> {
    this.checkUrl(url);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) !== 0) return;
    let addresses: { address: string }[];
    try {
      addresses = await resolve(host, { all: true });
    } catch {
      throw new EdgeError('EDGE_ORIGIN_UNREACHABLE', `${host} does not resolve`);
    }
    if (addresses.some((a) => !this.allows(a.address))) throw forbidden(host);
  }

  /** For undici's connect.lookup: every resolved address must be allowed (ssrf.ts refusingLookup). */
  lookup(resolve: typeof dns.lookup = dns.lookup): LookupFunction {
    return refusingLookup((address) => !this.allows(address), resolve);
  }
}

/** GETs a public URL whole (redirects followed and checked again), refusing it past maxSourceBytes. */
export class PublicFetcher {
  private readonly agent: Agent;

  constructor(
    readonly guard: PublicAddressGuard,
    private readonly limits: OriginLimits,
  ) {
    this.agent = new Agent({
      connect: { timeout: limits.connectTimeoutMs, lookup: guard.lookup() },
      headersTimeout: limits.headersTimeoutMs,
      bodyTimeout: limits.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  async get(target: string, inspect?: HeadInspector): Promise<OriginResponse & { url: URL }> {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new EdgeError('EDGE_BAD_PARAM', 'url is not a valid URL', { param: 'url' });
    }
    try {
      for (let hop = 0; ; hop++) {
        this.guard.checkUrl(url);
        const res = await request(url, { method: 'GET', dispatcher: this.agent, headers: { 'user-agent': USER_AGENT, accept: 'image/*,*/*;q=0.8' }, maxRedirections: 0 } as Parameters<typeof request>[1]);
        if (REDIRECT_STATUSES.has(res.statusCode)) {
          await res.body.dump();
          const location = res.headers.location;
          if (!location || hop >= MAX_REDIRECTS) throw new EdgeError('EDGE_ORIGIN_STATUS', 'the URL redirected too many times or without a Location');
          url = new URL(Array.isArray(location) ? location[0]! : location, url);
          continue;
        }
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new EdgeError('EDGE_ORIGIN_STATUS', `the URL answered ${res.statusCode}`, { originStatus: res.statusCode });
        }
        const body = await readLimited(res.body, this.limits.maxSourceBytes, inspect && ((head) => inspect(head, headers)));
        return { status: res.statusCode, headers, body, url };
      }
    } catch (err) {
      throw mapNetworkError(err, url.href);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
