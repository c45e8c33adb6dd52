/** Values from clients (ids, reasons) are cut to this many characters in a log line. */
export const MAX_FIELD_CHARS = 200;

const FIELDS = Symbol('logFields');

/** Top-level fields of a JSON log line: what the line is about, when known. */
export interface LogFields {
  roomId?: string;
  userId?: string;
  requestId?: string | number;
  action?: string;
  code?: string | number;
  reason?: string;
  /** Trace correlation (see trace-context.ts): `logging.googleapis.com/trace` and its span. */
  [key: string]: string | number | boolean | undefined;
}

type TaggedFields = LogFields & { readonly [FIELDS]: true };

/**
 * Marks `fields` as the fields of one log line, so a logger tells them apart from a message
 * part or a context; every string is cut to MAX_FIELD_CHARS, undefined values are left out.
 */
export function logFields(fields: LogFields): LogFields {
  const tagged: Record<string | symbol, unknown> = { [FIELDS]: true };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) {
      tagged[key] = typeof value === 'string' ? truncate(value) : value;
    }
  }
  return tagged as unknown as TaggedFields;
}

export function isLogFields(value: unknown): value is LogFields {
  return typeof value === 'object' && value !== null && (value as TaggedFields)[FIELDS] === true;
}

export function truncate(value: string, max = MAX_FIELD_CHARS): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

/** Nest's logger calls: message, then optional parts, then the context (a string) last. */
export interface LogCall {
  context?: string;
  fields?: LogFields;
  /** The rest of the optional parameters (an error's stack string, extra messages). */
  rest: unknown[];
}

export function splitLogCall(optionalParams: unknown[]): LogCall {
  const rest = [...optionalParams];
  let context: string | undefined;
  if (rest.length > 0 && typeof rest[rest.length - 1] === 'string') {
    context = rest.pop() as string;
  }
  let fields: LogFields | undefined;
  const index = rest.findIndex(isLogFields);
  if (index >= 0) {
    fields = rest[index] as LogFields;
    rest.splice(index, 1);
  }
  return { context, fields, rest: rest.filter((part) => part !== undefined) };
}

/** ` key=value` pairs for the text format, on the same line; trace ids are for JSON only. */
export function formatFieldsText(fields: LogFields): string {
  return Object.entries(fields)
    .filter(([key]) => !key.startsWith('logging.googleapis.com/'))
    .map(([key, value]) => ` ${key}=${JSON.stringify(value)}`)
    .join('');
}
