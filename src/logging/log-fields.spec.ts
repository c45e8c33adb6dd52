import {
  formatFieldsText,
  isLogFields,
  logFields,
  MAX_FIELD_CHARS,
  splitLogCall,
  truncate,
} from './log-fields.js';

describe('log fields', () => {
  it('tags fields so loggers tell them from other parameters, dropping undefined values', () => {
    const fields = logFields({ userId: 'a', roomId: undefined });
    expect(isLogFields(fields)).toBe(true);
    expect(isLogFields({ userId: 'a' })).toBe(false);
    expect(JSON.parse(JSON.stringify(fields))).toEqual({ userId: 'a' });
  });

  it('cuts long strings', () => {
    expect(truncate('x'.repeat(MAX_FIELD_CHARS))).toHaveLength(MAX_FIELD_CHARS);
    expect(truncate('x'.repeat(MAX_FIELD_CHARS + 50))).toHaveLength(MAX_FIELD_CHARS + 1);
    expect((logFields({ reason: 'y'.repeat(1000) }).reason as string).length).toBe(
      MAX_FIELD_CHARS + 1,
    );
  });

  it('splits a Nest logger call into context, fields and the rest', () => {
    const fields = logFields({ code: 'X' });
    expect(splitLogCall([fields, 'stack', 'Ctx'])).toEqual({
      context: 'Ctx',
      fields,
      rest: ['stack'],
    });
    expect(splitLogCall([undefined, 'Ctx'])).toEqual({
      context: 'Ctx',
      fields: undefined,
      rest: [],
    });
    expect(splitLogCall([])).toEqual({ context: undefined, fields: undefined, rest: [] });
  });

  it('prints fields compactly for the text format, without the trace ids', () => {
    expect(
      formatFieldsText(
        logFields({
          userId: 'bob',
          code: 4001,
          'logging.googleapis.com/trace': 'projects/p/traces/t',
        }),
      ),
    ).toBe(' userId="bob" code=4001');
  });
});
