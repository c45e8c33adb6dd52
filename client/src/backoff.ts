import { CloseCode } from '../../src/protocol/protocol.js';

export interface BackoffOptions {
  /** The first attempt's ceiling, doubled each attempt. Default 500 ms. */
  minMs?: number;
  /** The highest ceiling. Default 20 s. */
  maxMs?: number;
}

/** Full jitter (0 to min(maxMs, minMs * 2^attempt)): clients dropped together come back apart. */
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

/** A refused upgrade's HTTP status, which `ws` tells ("server response: 401") and browsers not. */
export function refusedStatus(error: unknown): number | undefined {
  const message = (error as { message?: unknown } | null)?.message;
  const match = typeof message === 'string' ? /server response: (\d{3})/.exec(message) : null;
  return match ? Number(match[1]) : undefined;
}

/** Closes no retry can change. */
const TERMINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.SessionReplaced,
  CloseCode.TokenExpired,
  CloseCode.UpgradeBadRequest,
  CloseCode.UpgradeUnauthorized,
  CloseCode.UpgradeForbidden,
]);

/**
 * Whether a close ends the client for good: 4000, 4001 (reconnect with a new token yourself), or
 * a refused upgrade a retry repeats: 4400/4401/4403, or from `ws` the HTTP status.
 */
export function isTerminalClose(code: number, status: number | undefined): boolean {
  if (TERMINAL_CLOSE_CODES.has(code)) {
    return true;
  }
  return status !== undefined && TERMINAL_STATUSES.has(status);
}
