import type { ErrorCode, ErrorPayload } from '../../src/protocol/protocol.js';

/** Failures the client itself detects; the server's own codes are `ErrorCode`. */
export const ClientErrorCode = {
  /** No reply within `requestTimeoutMs`. */
  Timeout: 'TIMEOUT',
  /** The connection closed before the reply came; the request may or may not have been applied. */
  ConnectionClosed: 'CONNECTION_CLOSED',
  /** The client was not open when the request was made. */
  NotConnected: 'NOT_CONNECTED',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export interface GalleryErrorDetails {
  requestId?: string;
  field?: string;
  currentVersion?: number;
  retryAfterMs?: number;
}

/** Every rejected request: a server `error` event, a timeout or a closed connection. */
export class GalleryError extends Error {
  readonly requestId?: string;
  readonly field?: string;
  /** STALE_VERSION: the room's version now. */
  readonly currentVersion?: number;
  /** RATE_LIMITED: when the request would fit. */
  readonly retryAfterMs?: number;

  constructor(
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    details: GalleryErrorDetails = {},
  ) {
    super(message);
    this.name = 'GalleryError';
    Object.assign(this, details);
  }

  static fromPayload(payload: ErrorPayload): GalleryError {
    const { code, message, ...details } = payload;
    return new GalleryError(code, message, details);
  }
}
