import { EdgeError, type ErrorCode } from '../errors.js';

/** The status each code is answered with. */
const STATUS: Record<ErrorCode, number> = {
  EDGE_BAD_PARAM: 400,
  EDGE_BAD_PATH: 400,
  EDGE_BAD_SIGNATURE: 403,
  EDGE_TOO_MANY_VARIANTS: 429,
  EDGE_UNAUTHORIZED: 401,
  EDGE_NOT_FOUND: 404,
  EDGE_METHOD_NOT_ALLOWED: 405,
  EDGE_ORIGIN_STATUS: 502,
  EDGE_ORIGIN_TIMEOUT: 504,
  EDGE_ORIGIN_UNREACHABLE: 502,
  EDGE_ORIGIN_TOO_LARGE: 413,
  EDGE_NOT_AN_IMAGE: 415,
  EDGE_BAD_IMAGE: 422,
  EDGE_IMAGE_TOO_LARGE: 422,
  EDGE_FORBIDDEN_SOURCE: 403,
  EDGE_PURGE_UNAVAILABLE: 503,
  EDGE_BUSY: 503,
  EDGE_QUOTA_EXCEEDED: 403,
  EDGE_RATE_LIMITED: 429,
  EDGE_USAGE_UNAVAILABLE: 503,
  EDGE_INTERNAL: 500,
};

/** An error whose status the HTTP layer chose where its code's does not say enough (414 URL too long, 413 body too large). */
export class HttpError extends EdgeError {
  constructor(
    code: ErrorCode,
    readonly status: number,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(code, message, details);
  }
}

/**
 * The HTTP status an error is answered with: its code's, except that an origin's own 4xx passes
 * through (404 and 410 as 404) and an HttpError carries its own.
 */
export function statusOf(err: EdgeError): number {
  if (err instanceof HttpError) return err.status;
  const originStatus = err.details.originStatus;
  if (err.code === 'EDGE_ORIGIN_STATUS' && typeof originStatus === 'number' && originStatus >= 400 && originStatus < 500) {
    return originStatus === 410 ? 404 : originStatus;
  }
  return STATUS[err.code];
}
