import dns from 'node:dns';
import { BlockList, isIP, isIPv4, isIPv6, type LookupFunction } from 'node:net';
import { EdgeError } from '../errors.js';

/*
 * What "allowed" means (one HttpOrigin = one site = one agent, so nothing is shared between sites):
 * - Requests go only to allowed origins: the configured base origin and the site's extra allowed
 *   origins, matched exactly on scheme, host and port (`originKey`). Redirects are held to the same set.
 * - Address trust follows the configured host NAME (as WHATWG URL normalizes it: lower case,
 *   punycode, dotted-quad IPv4), never the addresses it resolved to: another name pointing at the
 *   same 10.x address, or that address written as a literal, stays refused. No suffixes or
 *   wildcards; `localhost.` is not `localhost`.
 * - A trusted name may resolve to loopback or private addresses (origins run there), but not to
 *   unspecified or link-local ones: 0.0.0.0 and the cloud metadata service at 169.254.169.254 are
 *   never where a named origin lives, so a rebound or hijacked name cannot reach them. An operator
 *   who really means such an address writes it as a literal.
 */

function blockList(v4: string[], v6: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of v4) list.addSubnet(cidr.split('/')[0]!, Number(cidr.split('/')[1]), 'ipv4');
  for (const cidr of v6) list.addSubnet(cidr.split('/')[0]!, Number(cidr.split('/')[1]), 'ipv6');
  return list;
}

// IANA special-purpose IPv4 ranges, multicast and reserved (240/4 includes 255.255.255.255).
const nonPublic = blockList(
  ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24',
    '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4'],
  // Inside global unicast 2000::/3: IETF protocol assignments (Teredo 2001::/32, benchmarking, ORCHID) and documentation.
  ['2001::/23', '2001:db8::/32', '3fff::/20'],
);
const globalUnicast = blockList([], ['2000::/3']);
const nat64 = blockList([], ['64:ff9b::/96']);
const sixToFour = blockList([], ['2002::/16']);
const neverByName = blockList(['0.0.0.0/8', '169.254.0.0/16'], ['::/128', 'fe80::/10']);

/** The eight 16-bit words of a valid IPv6 address (a trailing dotted quad allowed). */
function ipv6Words(address: string): number[] {
  let text = address.toLowerCase();
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const words = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return words.map((w) => parseInt(w, 16));
}

const ipv4Of = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/**
 * true for addresses no origin fetch may reach unless configured: loopback, unspecified, private,
 * link-local, CGNAT, multicast, reserved/broadcast, documentation, benchmarking, every IPv6 address
 * outside global unicast 2000::/3 (so IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 forms,
 * fc00::/7, fe80::/10, ff00::/8), Teredo, and NAT64 / 6to4 addresses embedding a non-public IPv4.
 * Anything that is not an IP address, or carries a zone id, counts as non-public.
 */
export function isNonPublicAddress(address: string): boolean {
  if (isIPv4(address)) return nonPublic.check(address, 'ipv4');
  // A zone id (fe80::1%eth0) only ever names a local interface.
  if (!isIPv6(address) || address.includes('%')) return true;
  if (nat64.check(address, 'ipv6')) {
    const w = ipv6Words(address);
    return isNonPublicAddress(ipv4Of(w[6]!, w[7]!));
  }
  if (!globalUnicast.check(address, 'ipv6') || nonPublic.check(address, 'ipv6')) return true;
  if (sixToFour.check(address, 'ipv6')) {
    const w = ipv6Words(address);
    return isNonPublicAddress(ipv4Of(w[1]!, w[2]!));
  }
  return false;
}

const forbidden = (): EdgeError => new EdgeError('EDGE_FORBIDDEN_SOURCE', 'the origin address is not allowed');

/**
 * A dns.lookup for undici's `connect.lookup` / http.Agent's `lookup` that resolves every address
 * and refuses the connection (EDGE_FORBIDDEN_SOURCE) when `refuse` says so of any of them.
 * Checked after DNS, at connect time, so a name that rebinds between a check and the connection
 * cannot get through.
 */
export function refusingLookup(refuse: (address: string, hostname: string) => boolean, resolve: typeof dns.lookup = dns.lookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      if (addresses.some((a) => refuse(a.address, hostname))) return callback(forbidden(), '');
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * A site's lookup: refuses any non-public address, or for a trusted name any unspecified or
 * link-local one.
 */
export function guardedLookup(trustedHosts: ReadonlySet<string>, resolve: typeof dns.lookup = dns.lookup): LookupFunction {
  return refusingLookup(
    (a, hostname) => (trustedHosts.has(hostname.toLowerCase()) ? neverByName.check(a, isIPv4(a) ? 'ipv4' : 'ipv6') : isNonPublicAddress(a)),
    resolve,
  );
}

/**
 * Refuses a URL whose host is a non-public IP literal that is not itself configured: Node connects
 * to literals without calling `lookup`. The URL parser has already turned 0x7f000001, 2130706433
 * and 127.1 into 127.0.0.1, and bracketed IPv6 into its canonical form.
 */
export function checkLiteralHost(url: URL, trustedHosts: ReadonlySet<string>): void {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0 || trustedHosts.has(url.hostname)) return;
  if (isNonPublicAddress(host)) throw forbidden();
}

/** 'https://img.example.com:443': scheme, host and port, the default port spelled out. */
export function originKey(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '');
  return `${url.protocol}//${url.hostname}:${port}`;
}

export interface RedirectPolicy {
  /** `originKey` strings of the origins a redirect may lead to */
  allowedOrigins: ReadonlySet<string>;
  maxRedirects: number;
}

/**
 * The URL to fetch after the `hop`-th 3xx (1 for the first): EDGE_ORIGIN_STATUS 502 when there is
 * no usable Location or more than maxRedirects hops, EDGE_FORBIDDEN_SOURCE 403 when the Location
 * leaves the allowed origins (nothing is requested from it).
 */
export function nextHop(current: URL, location: string | undefined, hop: number, policy: RedirectPolicy): URL {
  if (!location) throw new EdgeError('EDGE_ORIGIN_STATUS', 'the origin redirected without a Location');
  if (hop > policy.maxRedirects) throw new EdgeError('EDGE_ORIGIN_STATUS', 'the origin redirected too many times', { redirects: hop });
  let next: URL;
  try {
    next = new URL(location, current);
  } catch {
    throw new EdgeError('EDGE_ORIGIN_STATUS', 'the origin redirected to an invalid Location');
  }
  if (!policy.allowedOrigins.has(originKey(next))) {
    throw new EdgeError('EDGE_FORBIDDEN_SOURCE', 'the origin redirected outside the allowed origins');
  }
  next.hash = '';
  return next;
}
