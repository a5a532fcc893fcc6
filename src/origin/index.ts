import { FileOrigin } from './file-origin.js';
import { HttpOrigin, type OriginSecurity } from './http-origin.js';
import type { Origin, OriginLimits } from './types.js';

export function createOrigin(url: string, limits: OriginLimits, security: OriginSecurity = {}): Origin {
  return /^file:/i.test(url) ? new FileOrigin(url, limits, security.htmlHeaders) : new HttpOrigin(url, limits, security);
}
