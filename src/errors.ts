/**
 * The errors every stage throws, below all of them: a stable code and details for the client.
 * What HTTP status answers each is the HTTP layer's decision (src/http/errors.ts).
 */

/** Stable error codes: clients and tests match on these, never on messages. */
export type ErrorCode =
  | 'EDGE_BAD_PARAM'
  | 'EDGE_BAD_PATH'
  | 'EDGE_BAD_SIGNATURE'
  | 'EDGE_TOO_MANY_VARIANTS'
  | 'EDGE_UNAUTHORIZED'
  | 'EDGE_NOT_FOUND'
  | 'EDGE_METHOD_NOT_ALLOWED'
  | 'EDGE_ORIGIN_STATUS'
  | 'EDGE_ORIGIN_TIMEOUT'
  | 'EDGE_ORIGIN_UNREACHABLE'
  | 'EDGE_ORIGIN_TOO_LARGE'
  | 'EDGE_NOT_AN_IMAGE'
  | 'EDGE_BAD_IMAGE'
  | 'EDGE_IMAGE_TOO_LARGE'
  | 'EDGE_FORBIDDEN_SOURCE'
  | 'EDGE_PURGE_UNAVAILABLE'
  | 'EDGE_BUSY'
  | 'EDGE_QUOTA_EXCEEDED'
  | 'EDGE_RATE_LIMITED'
  | 'EDGE_USAGE_UNAVAILABLE'
  | 'EDGE_INTERNAL';

/** An error that is meant to reach the client as JSON with a stable code. */
export class EdgeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'EdgeError';
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export function badParam(param: string, message: string): EdgeError {
  return new EdgeError('EDGE_BAD_PARAM', message, { param });
}
