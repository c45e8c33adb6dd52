import { ErrorCode } from '../protocol/protocol.js';
import {
  nestsDeeperThan,
  parseClientFrame,
  unknownAction,
  type RejectedFrame,
} from './client-frame.parser.js';

function rejectionOf(raw: unknown): RejectedFrame {
  const parsed = parseClientFrame(raw);
  if (!parsed.rejected) {
    throw new Error(`expected ${String(raw)} to be rejected`);
  }
  return parsed.rejection;
}

describe('parseClientFrame', () => {
  it.each(['not json', '{"action":', '', "{'action':'ping'}", '{"action":"ping"} x'])(
    'rejects %j with INVALID_JSON',
    (raw) => {
      const rejection = rejectionOf(raw);
      expect(rejection.code).toBe(ErrorCode.InvalidJson);
      expect(rejection.requestId).toBeUndefined();
    },
  );

  it.each([
    ['an array', '[{"action":"ping","requestId":"r1"}]'],
    ['null', 'null'],
    ['a number', '42'],
    ['a string', '"ping"'],
    ['a boolean', 'true'],
  ])('rejects %s with INVALID_MESSAGE', (_label, raw) => {
    const rejection = rejectionOf(raw);
    expect(rejection.code).toBe(ErrorCode.InvalidMessage);
    expect(rejection.requestId).toBeUndefined();
  });

  it.each([
    ['a missing action', '{"requestId":"r1"}'],
    ['a numeric action', '{"action":5,"requestId":"r1"}'],
    ['a null action', '{"action":null,"requestId":"r1"}'],
    ['an object action', '{"action":{"name":"ping"},"requestId":"r1"}'],
  ])('rejects %s with INVALID_MESSAGE, keeping the requestId', (_label, raw) => {
    const rejection = rejectionOf(raw);
    expect(rejection.code).toBe(ErrorCode.InvalidMessage);
    expect(rejection.requestId).toBe('r1');
  });

  it('rejects an object without action and without requestId', () => {
    const rejection = rejectionOf('{}');
    expect(rejection.code).toBe(ErrorCode.InvalidMessage);
    expect(rejection.requestId).toBeUndefined();
  });

  it.each([
    ['at the top level', '{"action":"ping","requestId":"r1","__proto__":{"polluted":true}}'],
    [
      'nested in an object',
      '{"action":"broadcast","requestId":"r1","roomId":"r","message":{"type":"t","data":{"__proto__":{"polluted":true}}}}',
    ],
    [
      'nested in an array',
      '{"action":"update_state","requestId":"r1","ops":[{"op":"add","item":{"__proto__":{"polluted":true}}}]}',
    ],
    [
      'as a JSON-escaped key',
      '{"action":"ping","requestId":"r1","__pro\\u0074o__":{"polluted":true}}',
    ],
  ])('rejects a __proto__ key %s with VALIDATION_FAILED', (_label, raw) => {
    const rejection = rejectionOf(raw);
    expect(rejection.code).toBe(ErrorCode.ValidationFailed);
    expect(rejection.field).toBe('__proto__');
    expect(rejection.requestId).toBe('r1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('accepts "__proto__" as a value rather than a key', () => {
    const raw = '{"action":"broadcast","roomId":"r","message":{"type":"__proto__"}}';
    const parsed = parseClientFrame(raw);
    expect(parsed).toEqual({
      rejected: false,
      action: 'broadcast',
      message: JSON.parse(raw),
    });
  });

  it('passes a normal frame through as the whole message object', () => {
    const frame = {
      action: 'update_state',
      requestId: 'r7',
      roomId: 'gallery-1',
      ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'hi', n: [1, 2] } }],
    };
    const parsed = parseClientFrame(JSON.stringify(frame));
    expect(parsed).toStrictEqual({ rejected: false, action: 'update_state', message: frame });
  });

  it('reads a Buffer as UTF-8 text', () => {
    const parsed = parseClientFrame(Buffer.from('{"action":"ping","requestId":"é"}'));
    expect(parsed).toEqual({
      rejected: false,
      action: 'ping',
      message: { action: 'ping', requestId: 'é' },
    });
  });
});

describe('unknownAction', () => {
  it('answers UNKNOWN_ACTION with the requestId and a bounded message', () => {
    const action = 'x'.repeat(500);
    const rejection = unknownAction(action, { action, requestId: 'r2' });
    expect(rejection.code).toBe(ErrorCode.UnknownAction);
    expect(rejection.requestId).toBe('r2');
    expect(rejection.message).toContain('x'.repeat(64));
    expect(rejection.message).not.toContain('x'.repeat(65));
  });
});

describe('depth limit', () => {
  const nested = (depth: number, inner = '1') =>
    '{"action":"ping","requestId":"r1","x":' +
    '['.repeat(depth - 1) +
    inner +
    ']'.repeat(depth - 1) +
    '}';

  it('accepts nesting up to the limit, counting the message itself', () => {
    expect(parseClientFrame(nested(8), 8).rejected).toBe(false);
  });

  it('refuses one level more with VALIDATION_FAILED, keeping the requestId', () => {
    const parsed = parseClientFrame(nested(9), 8);
    expect(parsed).toEqual({
      rejected: true,
      rejection: {
        code: ErrorCode.ValidationFailed,
        message: 'The message nests deeper than 8 levels',
        requestId: 'r1',
        abusive: true,
      },
    });
  });

  it('refuses the 60 KB frame that overflowed the stack, without throwing', () => {
    const frame = nested(30_000, '"\\u0041"');
    expect(frame.length).toBeGreaterThan(60_000);
    const rejection = rejectionOf(frame);
    expect(rejection.code).toBe(ErrorCode.ValidationFailed);
    expect(rejection.abusive).toBe(true);
  });

  it('refuses deep objects as well as arrays', () => {
    const frame = '{"action":"ping","a":' + '{"a":'.repeat(40) + '1' + '}'.repeat(40) + '}';
    expect(rejectionOf(frame).code).toBe(ErrorCode.ValidationFailed);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const text = '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{';
    const frame = JSON.stringify({
      action: 'broadcast',
      message: { type: 'chat', data: { text } },
    });
    expect(parseClientFrame(frame).rejected).toBe(false);
  });

  describe('arrays past their bound', () => {
    const frame = (action: string, field: string, length: number, extra = {}) =>
      JSON.stringify({ action, requestId: 'r1', ...extra, [field]: Array(length).fill({}) });

    it.each([
      ['resume', 'rooms', 100],
      ['update_state', 'ops', 100],
      ['hello', 'capabilities', 16],
    ])('refuses %s with more %s than %d, as abusive, naming the field', (action, field, max) => {
      expect(parseClientFrame(frame(action, field, max + 1))).toEqual({
        rejected: true,
        rejection: {
          code: ErrorCode.ValidationFailed,
          message: `${field} must contain no more than ${max} elements`,
          field,
          requestId: 'r1',
          abusive: true,
          action,
        },
      });
      // At the bound the frame goes on to its handler, whose DTO checks every entry.
      expect(parseClientFrame(frame(action, field, max)).rejected).toBe(false);
    });

    it('refuses the 64 KB resume of 21,800 entries that stalled the server', () => {
      const text = frame('resume', 'rooms', 21_800);
      expect(text.length).toBeLessThan(65_536);
      expect(rejectionOf(text)).toMatchObject({ field: 'rooms', abusive: true });
    });

    it('leaves alone arrays of other actions and fields, and fields that are not arrays', () => {
      const data = { items: Array(500).fill({}) };
      const broadcast = { roomId: 'r', message: { type: 'chat', data } };
      expect(parseClientFrame(frame('broadcast', 'rooms', 500, broadcast)).rejected).toBe(false);
      expect(parseClientFrame(frame('join_room', 'ops', 500)).rejected).toBe(false);
      const notArray = JSON.stringify({ action: 'resume', rooms: { length: 500 } });
      expect(parseClientFrame(notArray).rejected).toBe(false);
    });
  });

  it.each([
    ['a string', '"[[[["', false],
    ['an escaped backslash before a closing quote', '"\\\\"', false],
    ['an escaped quote', '"\\"[[[["', false],
    ['three levels', '[[{"a":1}]]', false],
    ['four levels', '[[{"a":[1]}]]', true],
    ['fewer brackets than the limit', '[{"a":1}]', false],
    ['more brackets than the limit, side by side', '[{},{},[1],{"a":[2]}]', false],
    ['more brackets than the limit, one inside the next', '{"a":{"b":[{"c":[]}]}}', true],
  ])('nestsDeeperThan(3): %s', (_label, text, expected) => {
    expect(nestsDeeperThan(text, 3)).toBe(expected);
  });
});
