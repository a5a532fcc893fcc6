import type { Config, SiteConfig } from '../config/schema.js';
import { createOrigin } from '../origin/index.js';
import type { Origin } from '../origin/types.js';
import type { EncodePolicy } from '../transform/types.js';
import { VariantCounter } from './variant-bounds.js';

/** What a site with acceptCH asks browsers for on its pages (imgix's ch= hints), and what before the first image. */
const ACCEPT_CH = 'Sec-CH-Width, Sec-CH-DPR, Width, DPR, Save-Data';
const CRITICAL_CH = 'Sec-CH-DPR, DPR';

/** A configured site with what it needs at request time. */
export interface Site {
  config: SiteConfig;
  origin: Origin;
  defaults: URLSearchParams;
  policy: EncodePolicy;
  /** new variants per source, when the site caps them */
  variantCounter?: VariantCounter;
  /** the site's allowed origins (scheme://host:port), for watermarks fetched from them */
  allowedOrigins: Map<string, Origin>;
}

/** Chooses the site by the request's Host; "*" is the fallback for hosts no site names. */
export class SiteRegistry {
  private readonly byHost = new Map<string, Site>();
  private readonly fallback: Site | undefined;
  readonly all: Site[];

  constructor(config: Config) {
    this.all = config.sites.map((siteConfig) => ({
      config: siteConfig,
      origin: createOrigin(siteConfig.origin, config.origin, {
        allowedOrigins: siteConfig.allowedOrigins,
        ...(siteConfig.acceptCH ? { htmlHeaders: { 'accept-ch': ACCEPT_CH, 'critical-ch': CRITICAL_CH } } : {}),
      }),
      defaults: new URLSearchParams(siteConfig.defaults),
      policy: { qualityTarget: siteConfig.quality, ...siteConfig.metadata },
      ...(siteConfig.bounds.maxVariantsPerSource ? { variantCounter: new VariantCounter(siteConfig.bounds.maxVariantsPerSource) } : {}),
      allowedOrigins: new Map(siteConfig.allowedOrigins.map((o) => [new URL(o).origin, createOrigin(new URL(o).origin, config.origin, { allowedOrigins: siteConfig.allowedOrigins })])),
    }));
    let fallback: Site | undefined;
    for (const site of this.all) {
      for (const host of site.config.hosts) {
        if (host === '*') fallback ??= site;
        else this.byHost.set(host.toLowerCase(), site);
      }
    }
    this.fallback = fallback;
  }

  byName(name: string): Site | undefined {
    return this.all.find((s) => s.config.name === name);
  }

  siteFor(hostHeader: string | undefined): Site | undefined {
    const host = (hostHeader ?? '').toLowerCase().replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    return this.byHost.get(host) ?? this.fallback;
  }

  async close(): Promise<void> {
    await Promise.all(this.all.flatMap((s) => [s.origin, ...s.allowedOrigins.values()]).map((o) => o.close()));
  }
}
