import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EdgeError } from '../errors.js';

export interface OriginResponse {
  status: number;
  /** lower-case names; repeated headers joined with ", " */
  headers: Record<string, string>;
  body: Buffer;
}

export interface OriginLimits {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  maxSourceBytes: number;
}

/**
 * Looks at the first bytes of a source while it streams in: answers true once it has seen
 * enough, throws (an EdgeError) to refuse the source before the rest is downloaded.
 */
export type HeadInspector = (head: Buffer, headers: Record<string, string>) => boolean;

export interface FetchOptions {
  inspect?: HeadInspector;
  /** validators of the copy the edge holds: a 304 answers when it is still current */
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  /** the one language the origin is asked for (a site with language variants) */
  acceptLanguage?: string;
}

/** Where a site's originals come from. */
export interface Origin {
  /** GET a source whole, refusing it while it streams once it passes maxSourceBytes. */
  fetch(pathAndQuery: string, options?: FetchOptions): Promise<OriginResponse>;
  /**
   * Streams the request through unchanged (non-image traffic) into `res`. When the origin cannot
   * answer (unreachable, timed out, no such file), tells `failed` instead, before anything is sent.
   */
  passthrough(req: IncomingMessage, res: ServerResponse, pathAndQuery: string, failed: (err: EdgeError) => void): void;
  close(): Promise<void>;
}
