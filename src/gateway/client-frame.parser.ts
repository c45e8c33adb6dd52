import { ErrorCode } from '../protocol/protocol.js';
import { ARRAY_LIMITS_OF_ACTION, oversizedArray } from './dto/array-limits.js';

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
  /**
   * A frame no honest client sends (too deep, an array past its bound): it counts towards closing
   * the connection.
   */
  abusive?: boolean;
  /** The action the frame named or stood for, for the log (which skips refused broadcasts). */
  action?: string;
}

/** MAX_JSON_DEPTH's default: a pose broadcast is 4 deep, room state a few more. */
export const DEFAULT_MAX_JSON_DEPTH = 32;

export type ParsedFrame =
  | { rejected: false; action: string; message: Record<string, unknown> }
  | { rejected: true; rejection: RejectedFrame };

const PROTO_KEY = '__proto__';

/**
 * The adapter's message parser: one JSON.parse per frame, `action` picks the handler and the whole
 * message is the handler's data. Invalid frames become a REJECTED_FRAME carrying the error code.
 *
 * Nesting deeper than `maxDepth` is refused before anything walks the object: the prototype-key
 * check, DTO transformation, JSON.stringify of a relayed message and the stores all recurse, and a
 * 60 KB frame can nest 30,000 deep. (V8's JSON.parse itself does not recurse.) An array longer
 * than its request allows is refused here too, on its length alone: the DTO checks look at every
 * entry before they get to the bound (array-limits.ts).
 */
export function parseClientFrame(raw: unknown, maxDepth = DEFAULT_MAX_JSON_DEPTH): ParsedFrame {
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
  if (nestsDeeperThan(text, maxDepth)) {
    return reject({
      code: ErrorCode.ValidationFailed,
      message: `The message nests deeper than ${maxDepth} levels`,
      requestId,
      abusive: true,
    });
  }
  if (typeof action !== 'string') {
    return reject({
      code: ErrorCode.InvalidMessage,
      message: 'The message needs a string "action"',
      requestId,
    });
  }
  const oversized = oversizedArray(message, ARRAY_LIMITS_OF_ACTION.get(action));
  if (oversized) {
    return reject({
      code: ErrorCode.ValidationFailed,
      message: oversized.message,
      field: oversized.field,
      requestId,
      abusive: true,
      action,
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
    action: action.slice(0, 64),
  };
}

function reject(rejection: RejectedFrame): ParsedFrame {
  return { rejected: true, rejection };
}

/**
 * Whether JSON text nests arrays and objects deeper than `limit`: one pass over the characters,
 * brackets inside strings skipped, nothing allocated (it runs for every pose).
 */
export function nestsDeeperThan(text: string, limit: number): boolean {
  // Nesting never goes deeper than the brackets that open it: a pose has 5, found by indexOf
  // (a vectorized search) in a fraction of the walk's time.
  if (opensAtMost(text, limit)) {
    return false;
  }
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) {
        i++;
      } else if (c === QUOTE) {
        inString = false;
      }
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > limit) {
        return true;
      }
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/** Whether `text` holds at most `limit` of `{` and `[`, inside strings or not. */
function opensAtMost(text: string, limit: number): boolean {
  let count = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) {
    if (++count > limit) {
      return false;
    }
  }
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) {
    if (++count > limit) {
      return false;
    }
  }
  return true;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Bounded by the depth limit checked before it runs. */
function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  if (Object.prototype.hasOwnProperty.call(value, PROTO_KEY)) {
    return true;
  }
  return Object.values(value).some(hasProtoKey);
}
