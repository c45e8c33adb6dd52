import { ErrorCode } from '../protocol/protocol.js';

/**
 * The gateway handler that answers frames the parser refused. The adapter calls it only for those:
 * a client that sends this as its `action` gets UNKNOWN_ACTION like any other unknown name.
 */
export const REJECTED_FRAME = '$rejected_frame';

export interface RejectedFrame {
  code: ErrorCode;
  message: string;
  requestId?: unknown;
  field?: string;
}

export type ParsedFrame =
  | { rejected: false; action: string; message: Record<string, unknown> }
  | { rejected: true; rejection: RejectedFrame };

const PROTO_KEY = '__proto__';

/**
 * The adapter's message parser: one JSON.parse per frame, `action` picks the handler and the whole
 * message is the handler's data. Invalid frames become a REJECTED_FRAME carrying the error code.
 */
export function parseClientFrame(raw: unknown): ParsedFrame {
  const text = typeof raw === 'string' ? raw : String(raw);
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return reject({ code: ErrorCode.InvalidJson, message: 'The message is not valid JSON' });
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    return reject({ code: ErrorCode.InvalidMessage, message: 'The message must be a JSON object' });
  }
  const { action, requestId } = message as { action?: unknown; requestId?: unknown };
  if (typeof action !== 'string') {
    return reject({
      code: ErrorCode.InvalidMessage,
      message: 'The message needs a string "action"',
      requestId,
    });
  }
  // A substring test first: the object walk runs only for the rare frame that may need it
  // (the key itself, or JSON escapes that could spell it).
  if ((text.includes(PROTO_KEY) || text.includes('\\u')) && hasProtoKey(message)) {
    return reject({
      code: ErrorCode.ValidationFailed,
      message: 'The key "__proto__" is not allowed',
      field: PROTO_KEY,
      requestId,
    });
  }
  return { rejected: false, action, message: message as Record<string, unknown> };
}

export function unknownAction(action: string, message: Record<string, unknown>): RejectedFrame {
  return {
    code: ErrorCode.UnknownAction,
    message: `Unknown action "${action.slice(0, 64)}"`,
    requestId: message.requestId,
  };
}

function reject(rejection: RejectedFrame): ParsedFrame {
  return { rejected: true, rejection };
}

function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  if (Object.prototype.hasOwnProperty.call(value, PROTO_KEY)) {
    return true;
  }
  return Object.values(value).some(hasProtoKey);
}
