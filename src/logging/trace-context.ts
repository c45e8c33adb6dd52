import type { IncomingHttpHeaders } from 'node:http';

/** The trace fields of one request's log lines; empty without a trace. */
export type TraceFields = Record<string, string | boolean>;

export const TRACE_FIELD = 'logging.googleapis.com/trace';
export const SPAN_FIELD = 'logging.googleapis.com/spanId';
export const SAMPLED_FIELD = 'logging.googleapis.com/trace_sampled';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const CLOUD_TRACE = /^([0-9a-fA-F]{32})(?:\/(\d{1,20}))?(?:;o=([01]))?$/;
const ZEROS = /^0+$/;

interface TraceIds {
  traceId: string;
  spanId?: string;
  sampled?: boolean;
}

/** W3C `traceparent` (version-traceid-spanid-flags); an invalid one is ignored. */
export function parseTraceparent(header: string): TraceIds | undefined {
  const match = TRACEPARENT.exec(header.trim());
  if (!match || match[1] === 'ff' || ZEROS.test(match[2]) || ZEROS.test(match[3])) {
    return undefined;
  }
  return {
    traceId: match[2],
    spanId: match[3],
    sampled: (parseInt(match[4], 16) & 1) === 1,
  };
}

/** `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`, the span id in decimal (logged as 16 hex). */
export function parseCloudTraceContext(header: string): TraceIds | undefined {
  const match = CLOUD_TRACE.exec(header.trim());
  if (!match || ZEROS.test(match[1])) {
    return undefined;
  }
  const ids: TraceIds = { traceId: match[1].toLowerCase() };
  if (match[2] !== undefined) {
    const span = BigInt(match[2]);
    if (span > 0n && span < 1n << 64n) {
      ids.spanId = span.toString(16).padStart(16, '0');
    }
  }
  if (match[3] !== undefined) {
    ids.sampled = match[3] === '1';
  }
  return ids;
}

/**
 * The Cloud Logging trace fields for a request, from `traceparent` (preferred) or
 * `X-Cloud-Trace-Context`; none without a project or a valid header. Only ids that matched a
 * strict hex/decimal pattern reach the log line, never the raw header.
 */
export function traceFieldsOf(
  headers: IncomingHttpHeaders,
  project: string | undefined,
): TraceFields {
  if (!project) {
    return {};
  }
  const traceparent = headerOf(headers, 'traceparent');
  const cloud = headerOf(headers, 'x-cloud-trace-context');
  const ids =
    (traceparent !== undefined ? parseTraceparent(traceparent) : undefined) ??
    (cloud !== undefined ? parseCloudTraceContext(cloud) : undefined);
  if (!ids) {
    return {};
  }
  const fields: TraceFields = { [TRACE_FIELD]: `projects/${project}/traces/${ids.traceId}` };
  if (ids.spanId !== undefined) {
    fields[SPAN_FIELD] = ids.spanId;
  }
  if (ids.sampled !== undefined) {
    fields[SAMPLED_FIELD] = ids.sampled;
  }
  return fields;
}

function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first !== undefined && first.length <= 512 ? first : undefined;
}
