import { z } from 'zod';

const MiB = 1024 * 1024;

const originUrl = z
  .string()
  .refine((v) => /^(https?:\/\/[^/]+|file:)/i.test(v), 'must be an http(s):// or file: URL');

const siteSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'letters, digits, . _ - only'),
    /** Host names (no port) this site answers; "*" matches any host no other site claims. */
    hosts: z.array(z.string().min(1)).min(1).default(['*']),
    origin: originUrl,
    /** Cache lifetime in seconds; the origin's max-age / s-maxage can only shorten it. */
    ttl: z.number().int().min(0).default(86_400),
    /** Parameters applied to raster images requested without any (e.g. "auto=format,compress"). */
    defaults: z.string().default(''),
    /** Further origins (scheme://host:port) the origin may redirect to; every hop is checked. */
    allowedOrigins: z.array(z.string().url()).default([]),
    /** Origin query parameters that are part of the source's identity (forwarded and keyed). */
    sourceQueryParams: z.array(z.string()).default([]),
    /** auto=compress searches the smallest encoding that stays at this perceptual target. */
    quality: z.enum(['high', 'medium', 'low']).default('high'),
    metadata: z
      .object({
        /** keep the source's EXIF copyright and artist (all other metadata is stripped) */
        keepCopyright: z.boolean().default(false),
        /** keep the colour profile as it is instead of converting to sRGB */
        keepIccProfile: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    stale: z
      .object({
        /** seconds past expiry an entry is still served while it is refreshed in the background */
        whileRevalidate: z.number().int().min(0).default(300),
        /** seconds past expiry an entry is still served when the origin fails or times out */
        ifError: z.number().int().min(0).default(86_400),
      })
      .strict()
      .prefault({}),
    /** seconds an origin 404 is remembered (0: not at all) */
    negativeTtl: z.number().int().min(0).default(10),
    /** language variants: the best match of Accept-Language is sent to the origin and keyed */
    languages: z.array(z.string().regex(/^[a-z]{2,3}(-[a-z0-9]{2,8})*$/i, 'a language tag like "en" or "pt-BR"')).default([]),
    /** With keys, every image URL must carry a valid `s`; several keys at once for rotation. */
    signing: z
      .object({
        keys: z.array(z.object({ key: z.string().min(16, 'at least 16 characters'), scheme: z.enum(['hmac-sha256', 'imgix-md5']).default('hmac-sha256') }).strict()).default([]),
      })
      .strict()
      .prefault({}),
    /** Bounds on the variants one source can have, so nobody fills the disk with unique sizes. */
    bounds: z
      .object({
        /** allowed output widths (w after dpr); unset: any */
        widths: z.array(z.number().int().min(1)).optional(),
        /** allowed explicit q values; unset: any */
        qualities: z.array(z.number().int().min(1).max(100)).optional(),
        /** new variants per source beyond this answer 429 (per node) */
        maxVariantsPerSource: z.number().int().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** imgix's ch=: client hints asked by URL change the output; widths from hints snap up to this step (or to bounds.widths) */
    clientHints: z
      .object({
        widthStep: z.number().int().min(1).max(1000).default(50),
      })
      .strict()
      .prefault({}),
    /** add Accept-CH and Critical-CH to HTML passthrough answers, so browsers send the hints */
    acceptCH: z.boolean().default(false),
    /** What a source that cannot be decoded answers: a 422 error, or the original bytes. */
    onError: z.enum(['error', 'original']).default('error'),
    formats: z
      .object({
        avif: z.boolean().default(true),
        /** AVIF is slow to encode: larger outputs are served as WebP instead. */
        avifMaxDimension: z.number().int().min(1).default(1600),
        avifEffort: z.number().int().min(0).max(9).default(2),
        /** an AVIF not cached yet is made in the background; meanwhile the browser gets WebP */
        avifInBackground: z.boolean().default(true),
      })
      .prefault({}),
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65_535).default(8080),
        /** How long a graceful shutdown waits for in-flight requests. */
        shutdownTimeoutMs: z.number().int().min(0).default(10_000),
      })
      .strict()
      .prefault({}),
    cache: z
      .object({
        dir: z.string().min(1).default('.cache/imgedge'),
        maxBytes: z.number().int().min(1).default(1024 * MiB),
        memoryBytes: z.number().int().min(0).default(64 * MiB),
        sweepIntervalSeconds: z.number().min(0.05).default(60),
        fsync: z.boolean().default(false),
        /** Most reads per second (a source directory listed, an entry header read) when the index is reconciled with the tree in the background. */
        reconcileReadsPerSecond: z.number().int().min(1).default(5000),
      })
      .strict()
      .prefault({}),
    origin: z
      .object({
        connectTimeoutMs: z.number().int().min(1).default(5_000),
        headersTimeoutMs: z.number().int().min(1).default(10_000),
        bodyTimeoutMs: z.number().int().min(1).default(10_000),
        /** Largest source the edge downloads; enforced while the body streams. */
        maxSourceBytes: z.number().int().min(1).default(32 * MiB),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxSourcePixels: z.number().int().min(1).default(50_000_000),
        maxOutputDimension: z.number().int().min(1).max(16_384).default(8192),
        maxOutputPixels: z.number().int().min(1).default(36_000_000),
        transformTimeoutSeconds: z.number().int().min(1).default(20),
        maxUrlLength: z.number().int().min(64).default(8192),
        /** animated sources keep at most this many frames */
        maxFrames: z.number().int().min(1).default(300),
        /** misses transformed at once (default: two per core) */
        transformConcurrency: z.number().int().min(1).optional(),
        /** misses waiting for a turn at most; more answer 503 with Retry-After */
        transformQueueLength: z.number().int().min(0).default(64),
        /** background encodes (AVIF) waiting at most; more are dropped until a later request */
        backgroundQueueLength: z.number().int().min(0).default(64),
      })
      .strict()
      .prefault({}),
    purge: z
      .object({
        /** bearer token of POST /_edge/purge; unset turns purging off */
        token: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    text: z
      .object({
        /** txt-font names (matched without case) → Pango font families installed here; unset: DejaVu and Liberation under imgix-style names */
        fonts: z.record(z.string().min(1), z.string().min(1)).optional(),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        /** required (once, as ?token=) by the operator dashboard at /_edge/ui/; unset: the /_edge/ access rule alone */
        token: z.string().min(16, 'at least 16 characters').optional(),
      })
      .strict()
      .prefault({}),
    /** shared state across nodes (purges); unset: this node works alone */
    redis: z
      .object({
        /** one Redis server */
        url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
        /** or Redis Sentinel: the sentinels ("host:port"), of which any one answering is enough … */
        sentinels: z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'must be host:port')).min(1).optional(),
        /** … and the name they monitor the master under */
        masterName: z.string().min(1).optional(),
        /** password (requirepass) of the Redis servers, for url-less (Sentinel) setups */
        password: z.string().min(1).optional(),
        /** password of the sentinels themselves, when they require one */
        sentinelPassword: z.string().min(1).optional(),
        /** TLS to the Redis servers and the sentinels (Sentinel setups; a URL says rediss://) */
        tls: z.boolean().default(false),
        /**
         * Replicas that must hold a purge before it is acknowledged (Redis WAIT), so a failover
         * cannot lose it; default 1 with Sentinel, 0 with one server.
         */
        ackReplicas: z.number().int().min(0).optional(),
      })
      .strict()
      .refine((r) => !(r.url && r.sentinels), 'set redis.url or redis.sentinels, not both')
      .refine((r) => !r.sentinels || r.masterName, 'redis.sentinels needs redis.masterName')
      .prefault({}),
    /** the optimization API (Kraken.io's): a second listener when `port` is set */
    api: z
      .object({
        port: z.number().int().min(0).max(65_535).optional(),
        host: z.string().default('127.0.0.1'),
        /** base of `kraked_url` (scheme://host[:port][/path]); default: the listener's own address */
        publicUrl: z.string().url().optional(),
        /** API keys; a secret is given in clear (env) or as its SHA-256 hex, and only the hash is kept */
        keys: z
          .array(
            z
              .object({
                key: z.string().regex(/^[A-Za-z0-9._-]{8,128}$/, '8-128 letters, digits, . _ -'),
                secret: z.string().min(16, 'at least 16 characters').optional(),
                secretSha256: z.string().regex(/^[0-9a-f]{64}$/, 'the SHA-256 of the secret, 64 hex digits').optional(),
                /** bytes of originals the key may have optimized; unset: no quota */
                quotaBytes: z.number().int().min(1).optional(),
              })
              .strict()
              .refine((k) => (k.secret === undefined) !== (k.secretSha256 === undefined), 'give secret or secretSha256, one of them'),
          )
          .default([]),
        /** networks (CIDR) URL fetches and callbacks may reach besides public addresses */
        allowNetworks: z.array(z.string()).default([]),
        /** how long results stay downloadable */
        resultTtlSeconds: z.number().int().min(1).default(3600),
        sweepIntervalSeconds: z.number().min(0.05).default(60),
        /** largest upload; bigger answers 413 */
        maxUploadBytes: z.number().int().min(1).default(32 * MiB),
        /** requests per key per minute; more answer 429 */
        requestsPerMinute: z.number().int().min(1).default(600),
        /**
         * count each source's distinct colours for the log record (docs/API.md): a second decode,
         * about a quarter of the CPU of a small lossy JPEG job
         */
        countColours: z.boolean().default(true),
        /** callback jobs optimized at once per process (the rest wait on disk) */
        callbackConcurrency: z.number().int().min(1).default(2),
        /** the web optimizer at GET / of this listener (issue 13) */
        webInterface: z
          .object({
            enabled: z.boolean().default(true),
            /** how long its results stay downloadable */
            ttlSeconds: z.number().int().min(1).default(43_200),
            /** required (once, as ?token=) where the listener is not on loopback; unset there: the page is off */
            token: z.string().min(16, 'at least 16 characters').optional(),
            /** the key its work is counted under (give it in api.keys too to read its user_status) */
            key: z.string().default('web-interface'),
          })
          .strict()
          .prefault({}),
        s3: z
          .object({
            /** an S3-compatible store (MinIO, Ceph, R2) for s3_store; unset: AWS S3 */
            endpoint: z.string().url().optional(),
          })
          .strict()
          .prefault({}),
        webhooks: z
          .object({
            /** tries per delivery */
            attempts: z.number().int().min(1).default(5),
            /** first retry after this; each next one waits twice as long (4 min: 5 tries over about an hour) */
            backoffMs: z.number().int().min(1).default(240_000),
            /** deliveries at once per process */
            concurrency: z.number().int().min(1).default(16),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      // Download links are built from publicUrl, else from the listener's address: 0.0.0.0 names none.
      .refine((a) => a.port === undefined || a.publicUrl !== undefined || !['0.0.0.0', '::', '[::]'].includes(a.host), {
        message: 'api.publicUrl (IMGEDGE_API_PUBLIC_URL) is needed when the API listens on every address: kraked_url must name one that clients reach',
        path: ['publicUrl'],
      })
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /**
         * A request line for every hit answered from the cache alone (IMGEDGE_LOG_HITS). Off, those
         * hits are still counted (metrics, dashboard) and every other request keeps its line:
         * behind nginx/imgedge.conf, whose access log has a line per request with the edge's
         * X-Cache, the edge's hit lines repeat it, and writing them cost a hit from memory 15–28 %
         * of its CPU (docs/OPERATIONS.md §7).
         */
        hits: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    sites: z.array(siteSchema).min(1),
  })
  .strict();

export type Config = z.output<typeof configSchema>;

/** How long past expiry any site may still serve an entry: the sweeper keeps entries that long. */
export function staleRetentionMs(config: Config): number {
  return Math.max(0, ...config.sites.map((s) => Math.max(s.stale.whileRevalidate, s.stale.ifError))) * 1000;
}
export type SiteConfig = Config['sites'][number];
