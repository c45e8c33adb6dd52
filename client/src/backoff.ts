import { CloseCode } from '../../src/protocol/protocol.js';

export interface BackoffOptions {
  /** The first attempt's ceiling, doubled each attempt. Default 500 ms. */
  minMs?: number;
  /** The highest ceiling. Default 20 s. */
  maxMs?: number;
}

/**
 * Full jitter: a uniform delay between 0 and min(maxMs, minMs * 2^attempt), so that clients
 * dropped together (a server restart) do not come back together.
 */
export function backoffDelay(
  attempt: number,
  random: () => number,
  { minMs = 500, maxMs = 20_000 }: BackoffOptions = {},
): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** HTTP statuses of a refused upgrade that another try cannot fix (bad userId, auth, origin). */
const TERMINAL_STATUSES = new Set([400, 401, 403]);

/**
 * The HTTP status of a refused upgrade, when the WebSocket implementation tells it (`ws` reports
 * "Unexpected server response: 401"; browsers never say).
 */
export function refusedStatus(error: unknown): number | undefined {
  const message = (error as { message?: unknown } | null)?.message;
  const match = typeof message === 'string' ? /server response: (\d{3})/.exec(message) : null;
  return match ? Number(match[1]) : undefined;
}

/** Closes no retry can change: the session went elsewhere, the token expired, a refused upgrade. */
const TERMINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.SessionReplaced,
  CloseCode.TokenExpired,
  CloseCode.UpgradeBadRequest,
  CloseCode.UpgradeUnauthorized,
  CloseCode.UpgradeForbidden,
]);

/**
 * Whether a close ends the client for good: the session went to another connection (4000), the
 * token expired (4001: reconnect with a new token yourself), or the upgrade was refused for a
 * reason a retry repeats: told by a close code 4400/4401/4403 (the server does so for clients
 * offering its subprotocol, as this one does) or, from `ws`, by the HTTP status.
 */
export function isTerminalClose(code: number, status: number | undefined): boolean {
  if (TERMINAL_CLOSE_CODES.has(code)) {
    return true;
  }
  return status !== undefined && TERMINAL_STATUSES.has(status);
}
