import {
  parseCloudTraceContext,
  parseTraceparent,
  SAMPLED_FIELD,
  SPAN_FIELD,
  TRACE_FIELD,
  traceFieldsOf,
} from './trace-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('trace headers', () => {
  it('reads a W3C traceparent', () => {
    expect(parseTraceparent(`00-${TRACE_ID}-00f067aa0ba902b7-01`)).toEqual({
      traceId: TRACE_ID,
      spanId: '00f067aa0ba902b7',
      sampled: true,
    });
  });

  it('ignores an invalid traceparent', () => {
    for (const header of [
      'garbage',
      `ff-${TRACE_ID}-00f067aa0ba902b7-01`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-00f067aa0ba902b7-01 secret`,
    ]) {
      expect(parseTraceparent(header)).toBeUndefined();
    }
  });

  it('reads X-Cloud-Trace-Context, its decimal span id as 16 hex digits', () => {
    expect(parseCloudTraceContext(`${TRACE_ID}/1;o=1`)).toEqual({
      traceId: TRACE_ID,
      spanId: '0000000000000001',
      sampled: true,
    });
    expect(parseCloudTraceContext(TRACE_ID)).toEqual({ traceId: TRACE_ID });
    expect(parseCloudTraceContext(`${TRACE_ID}/99999999999999999999999`)).toBeUndefined();
    expect(parseCloudTraceContext('abc/1;o=1')).toBeUndefined();
  });

  it('builds the Cloud Logging fields only with a project, preferring traceparent', () => {
    const headers = {
      traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-00`,
      'x-cloud-trace-context': `${'a'.repeat(32)}/5;o=1`,
    };
    expect(traceFieldsOf(headers, undefined)).toEqual({});
    expect(traceFieldsOf(headers, 'my-project')).toEqual({
      [TRACE_FIELD]: `projects/my-project/traces/${TRACE_ID}`,
      [SPAN_FIELD]: '00f067aa0ba902b7',
      [SAMPLED_FIELD]: false,
    });
    expect(traceFieldsOf({ 'x-cloud-trace-context': `${TRACE_ID}/255;o=1` }, 'my-project')).toEqual(
      {
        [TRACE_FIELD]: `projects/my-project/traces/${TRACE_ID}`,
        [SPAN_FIELD]: '00000000000000ff',
        [SAMPLED_FIELD]: true,
      },
    );
    expect(traceFieldsOf({}, 'my-project')).toEqual({});
    expect(traceFieldsOf({ traceparent: 'Bearer secret-token' }, 'my-project')).toEqual({});
  });
});
