/** Errors as Kraken's clients read them: `{"success": false, "message"}` (plus our stable code) and a status. */
import type { ServerResponse } from 'node:http';
import { EdgeError, type ErrorCode } from '../errors.js';

const STATUS: Record<ErrorCode, number> = {
  EDGE_BAD_PARAM: 400,
  EDGE_BAD_PATH: 400,
  EDGE_BAD_SIGNATURE: 403,
  EDGE_TOO_MANY_VARIANTS: 429,
  EDGE_UNAUTHORIZED: 401,
  EDGE_NOT_FOUND: 404,
  EDGE_METHOD_NOT_ALLOWED: 405,
  // The caller's URL failed: Kraken answers these as a bad request about that URL.
  EDGE_ORIGIN_STATUS: 400,
  EDGE_ORIGIN_TIMEOUT: 400,
  EDGE_ORIGIN_UNREACHABLE: 400,
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

/** An error of a request body too large for its route (413), in the same shape. */
export class ApiError extends EdgeError {
  constructor(code: ErrorCode, readonly status: number, message: string) {
    super(code, message);
  }
}

export function apiStatusOf(err: EdgeError): number {
  return err instanceof ApiError ? err.status : STATUS[err.code];
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export function sendApiError(res: ServerResponse, err: EdgeError): void {
  const retry: Record<string, string> = typeof err.details.retryAfter === 'number' ? { 'retry-after': String(err.details.retryAfter) } : {};
  sendJson(res, apiStatusOf(err), { success: false, message: err.message, code: err.code }, retry);
}
