import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode } from '../protocol/protocol.js';

/** The error code of a request that failed because Redis could not be reached in time. */
export const UNAVAILABLE = ErrorCode.Unavailable;

/**
 * A Redis error reply as ioredis reports it (its ReplyError, recognized by name so that this
 * module does not load ioredis: single-instance mode never does).
 */
function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'ReplyError';
}

/** Replies that mean "this Redis cannot serve now", not "the script or command is wrong". */
const TRANSIENT_REPLIES = [
  'LOADING',
  'BUSY',
  'READONLY',
  'MASTERDOWN',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'NOREPLICAS',
  'MISCONF',
  'OOM',
];

export function storeUnavailable(
  message = 'The room store is unavailable; try again',
): ProtocolError {
  return new ProtocolError(UNAVAILABLE, message);
}

/**
 * Turns what an ioredis call rejected with into what the store throws: connection losses,
 * timeouts and a refused or overloaded server become UNAVAILABLE (the cause is kept); any other
 * Redis reply error is a bug (a script or command mistake) and passes through unchanged, so the
 * gateway reports it as INTERNAL_ERROR and logs it.
 */
export function fromRedisError(error: unknown): unknown {
  if (error instanceof ProtocolError) {
    return error;
  }
  if (isReplyError(error)) {
    const kind = error.message.split(' ', 1)[0];
    if (!TRANSIENT_REPLIES.includes(kind)) {
      return error;
    }
  }
  const unavailable = storeUnavailable();
  unavailable.cause = error;
  return unavailable;
}
