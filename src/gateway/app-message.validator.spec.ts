import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode } from '../protocol/protocol.js';
import { checkAppMessage, checkBroadcast } from './app-message.validator.js';
import { AppMessageDto } from './dto/app-message.dto.js';
import { RoomRequestDto } from './dto/room-request.dto.js';
import { SendMessageDto } from './dto/send-message.dto.js';
import { toProtocolError } from './protocol-validation.pipe.js';

/**
 * The hand-written `broadcast` check is the hot-path stand-in for AppMessageDto: both must accept
 * and refuse the same messages, and name the same field when they refuse.
 */

type Outcome = { ok: true } | { ok: false; field: string | undefined };

/** The options of protocolValidationPipe, which validates every DTO-bound handler. */
const PIPE_OPTIONS = {
  forbidUnknownValues: true,
  stopAtFirstError: true,
  validationError: { target: false, value: false },
};

function handWritten(check: () => unknown): Outcome {
  try {
    check();
    return { ok: true };
  } catch (error) {
    if (!(error instanceof ProtocolError)) {
      throw error;
    }
    expect(error.code).toBe(ErrorCode.ValidationFailed);
    return { ok: false, field: error.details.field };
  }
}

function byDto(dto: new () => object, plain: unknown, fieldPrefix = ''): Outcome {
  const errors = validateSync(plainToInstance(dto, plain), PIPE_OPTIONS);
  if (errors.length === 0) {
    return { ok: true };
  }
  return { ok: false, field: `${fieldPrefix}${toProtocolError(errors).details.field}` };
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const astral = (count: number) => '\u{1F600}'.repeat(count); // 2 UTF-16 units each

interface MessageCase {
  name: string;
  message: unknown;
  /** What the issue says; undefined where it only demands that both sides agree. */
  valid?: boolean;
}

const messageCases: MessageCase[] = [
  // accepted
  { name: 'a minimal message', message: { type: 'pose' }, valid: true },
  {
    name: 'a message with every field',
    message: { type: 'pose', senderId: 'alice', timestamp: 1712345678901, data: { x: [1, 2] } },
    valid: true,
  },
  { name: 'a 1-character type', message: { type: 'p' }, valid: true },
  { name: 'a 64-character type', message: { type: 't'.repeat(64) }, valid: true },
  {
    name: 'a 64-character senderId',
    message: { type: 't', senderId: 's'.repeat(64) },
    valid: true,
  },
  { name: 'a zero timestamp', message: { type: 't', timestamp: 0 }, valid: true },
  { name: 'a negative fractional timestamp', message: { type: 't', timestamp: -1.5 }, valid: true },
  { name: 'an empty data object', message: { type: 't', data: {} }, valid: true },
  { name: 'nested data', message: { type: 't', data: { a: { b: [null, 'x'] } } }, valid: true },
  { name: 'fields beyond the known ones', message: { type: 't', extra: 1 }, valid: true },
  { name: 'an empty senderId', message: { type: 't', senderId: '' } },
  // refused: the message itself
  { name: 'a missing message', message: undefined, valid: false },
  { name: 'a null message', message: null, valid: false },
  { name: 'a string message', message: 'pose', valid: false },
  { name: 'a numeric message', message: 42, valid: false },
  { name: 'a boolean message', message: true, valid: false },
  { name: 'an empty array message', message: [], valid: false },
  { name: 'an array of messages', message: [{ type: 'pose' }], valid: false },
  // refused: type
  { name: 'a missing type', message: { data: {} }, valid: false },
  { name: 'an empty type', message: { type: '' }, valid: false },
  { name: 'a 65-character type', message: { type: 't'.repeat(65) }, valid: false },
  { name: 'a numeric type', message: { type: 7 }, valid: false },
  { name: 'a null type', message: { type: null }, valid: false },
  { name: 'an object type', message: { type: { name: 'pose' } }, valid: false },
  { name: 'an array type', message: { type: ['pose'] }, valid: false },
  // refused: senderId
  {
    name: 'a 65-character senderId',
    message: { type: 't', senderId: 's'.repeat(65) },
    valid: false,
  },
  { name: 'a numeric senderId', message: { type: 't', senderId: 5 }, valid: false },
  { name: 'a null senderId', message: { type: 't', senderId: null }, valid: false },
  // refused: timestamp
  { name: 'a string timestamp', message: { type: 't', timestamp: '123' }, valid: false },
  { name: 'a NaN timestamp', message: { type: 't', timestamp: NaN }, valid: false },
  { name: 'an infinite timestamp', message: { type: 't', timestamp: Infinity }, valid: false },
  { name: 'a null timestamp', message: { type: 't', timestamp: null }, valid: false },
  // refused: data
  { name: 'an array data', message: { type: 't', data: [1, 2] }, valid: false },
  { name: 'a string data', message: { type: 't', data: 'x' }, valid: false },
  { name: 'a numeric data', message: { type: 't', data: 1 }, valid: false },
  { name: 'a null data', message: { type: 't', data: null }, valid: false },
  // pose_update: data must carry a pose
  {
    name: 'a pose update',
    message: { type: 'pose_update', data: { position: [0, 1.7, 0], rotation: [0, 0, 0, 1] } },
    valid: true,
  },
  {
    name: 'a pose update with extra fields',
    message: {
      type: 'pose_update',
      senderId: 'alice',
      timestamp: 1,
      data: { position: [0, 1.7, -2.5], rotation: [0, 0.7, 0, 0.7], head: { yaw: 1 } },
    },
    valid: true,
  },
  { name: 'a pose update without data', message: { type: 'pose_update' }, valid: false },
  {
    name: 'a pose update with empty data',
    message: { type: 'pose_update', data: {} },
    valid: false,
  },
  {
    name: 'a pose update without rotation',
    message: { type: 'pose_update', data: { position: [0, 0, 0] } },
    valid: false,
  },
  {
    name: 'a pose update with a 2-vector position',
    message: { type: 'pose_update', data: { position: [0, 0], rotation: [0, 0, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with a 4-vector position',
    message: { type: 'pose_update', data: { position: [0, 0, 0, 0], rotation: [0, 0, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with a 3-vector rotation',
    message: { type: 'pose_update', data: { position: [0, 0, 0], rotation: [0, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with a string coordinate',
    message: { type: 'pose_update', data: { position: [0, '1', 0], rotation: [0, 0, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with a null coordinate',
    message: { type: 'pose_update', data: { position: [0, 1, 0], rotation: [0, null, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with an infinite coordinate',
    message: { type: 'pose_update', data: { position: [0, Infinity, 0], rotation: [0, 0, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with a NaN coordinate',
    message: { type: 'pose_update', data: { position: [0, 0, 0], rotation: [NaN, 0, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with an object position',
    message: { type: 'pose_update', data: { position: { x: 0 }, rotation: [0, 0, 0, 1] } },
    valid: false,
  },
  {
    name: 'a pose update with array data',
    message: {
      type: 'pose_update',
      data: [
        [0, 0, 0],
        [0, 0, 0, 1],
      ],
    },
    valid: false,
  },
  {
    name: 'another type with pose-less data',
    message: { type: 'pose_updates', data: { position: 'here' } },
    valid: true,
  },
  // lengths counted in characters outside the Basic Multilingual Plane
  { name: 'a type of 33 emoji (66 UTF-16 units)', message: { type: astral(33) } },
  { name: 'a type of 64 emoji (128 UTF-16 units)', message: { type: astral(64) } },
  { name: 'a senderId of 40 emoji', message: { type: 't', senderId: astral(40) } },
];

describe('checkBroadcast / checkAppMessage and AppMessageDto agree', () => {
  describe.each(messageCases)('$name', ({ message, valid }) => {
    const hand = () => handWritten(() => checkBroadcast({ roomId: 'room-1', message }));

    it('gets the same answer from checkAppMessage and checkBroadcast', () => {
      expect(handWritten(() => checkAppMessage(message))).toEqual(hand());
    });

    if (valid !== undefined) {
      it(`is ${valid ? 'accepted' : 'refused'} by the hand-written check`, () => {
        expect(hand().ok).toBe(valid);
      });
    }

    it('gets the same answer and field from AppMessageDto as bound in SendMessageDto', () => {
      expect(byDto(SendMessageDto, { targetUserId: 'bob', message })).toEqual(hand());
    });

    if (isPlainObject(message)) {
      it('gets the same answer and field from AppMessageDto on its own', () => {
        expect(byDto(AppMessageDto, message, 'message.')).toEqual(hand());
      });
    }
  });
});

describe('checkBroadcast roomId and the DTO roomId rule agree', () => {
  it.each<[string, unknown, boolean]>([
    ['a simple id', 'gallery-1', true],
    ['every allowed character', 'Az09._-', true],
    ['a 64-character id', 'r'.repeat(64), true],
    ['a 65-character id', 'r'.repeat(65), false],
    ['an empty id', '', false],
    ['a space', 'room 1', false],
    ['a slash', 'room/1', false],
    ['a non-ASCII letter', 'caf\u00e9', false],
    ['a trailing newline', 'room\n', false],
    ['a number', 12, false],
    ['null', null, false],
    ['a missing id', undefined, false],
  ])('%s', (_label, roomId, valid) => {
    const hand = handWritten(() => checkBroadcast({ roomId, message: { type: 't' } }));
    expect(hand.ok).toBe(valid);
    expect(byDto(RoomRequestDto, { roomId })).toEqual(hand);
  });
});

describe('checkBroadcast', () => {
  it('returns the body it was given, untouched', () => {
    const body = { action: 'broadcast', roomId: 'r', message: { type: 't', data: { x: 1 } } };
    const copy = structuredClone(body);
    expect(checkBroadcast(body)).toBe(body);
    expect(body).toStrictEqual(copy);
  });
});

/** A refusal as the client sees it: the message and the field, or undefined when accepted. */
function refusalOf(check: () => unknown): { message: string; field?: string } | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    if (!(error instanceof ProtocolError)) {
      throw error;
    }
    expect(error.code).toBe(ErrorCode.ValidationFailed);
    return { message: error.message, field: error.details.field };
  }
}

function dtoRefusalOf(dto: new () => object, plain: object) {
  return refusalOf(() => {
    const errors = validateSync(plainToInstance(dto, plain), PIPE_OPTIONS);
    if (errors.length > 0) {
      throw toProtocolError(errors);
    }
  });
}

describe('checkBroadcast requestId and the DTO requestId rule agree', () => {
  it.each<[string, unknown, boolean]>([
    ['a missing requestId', undefined, true],
    ['a short requestId', 'r-1', true],
    ['an empty requestId', '', true],
    ['a 128-character requestId', 'r'.repeat(128), true],
    ['64 emoji (128 UTF-16 units)', astral(64), true],
    ['100 emoji (200 UTF-16 units, 100 characters)', astral(100), true],
    ['null, which an optional field takes as absent', null, true],
    ['a 129-character requestId', 'r'.repeat(129), false],
    ['a 500-character requestId', 'r'.repeat(500), false],
    ['129 emoji', astral(129), false],
    ['a number', 5, false],
    ['an object', { x: 1 }, false],
    ['an array', ['r'], false],
    ['true', true, false],
  ])('%s', (_label, requestId, valid) => {
    const message = { type: 't' };
    const hand = refusalOf(() => checkBroadcast({ requestId, roomId: 'r', message }));
    expect(hand === undefined).toBe(valid);
    // The same message and field as send_message and every room request give.
    expect(hand).toEqual(dtoRefusalOf(SendMessageDto, { requestId, targetUserId: 'b', message }));
    expect(hand).toEqual(dtoRefusalOf(RoomRequestDto, { requestId, roomId: 'r' }));
  });

  it('names requestId first when roomId and message are wrong too, as the DTOs do', () => {
    const body = { requestId: { x: 1 }, roomId: 'bad room', message: 7 };
    const hand = refusalOf(() => checkBroadcast(body));
    expect(hand).toMatchObject({ field: 'requestId' });
    expect(hand).toEqual(dtoRefusalOf(RoomRequestDto, body));
  });
});
