import 'reflect-metadata';
import { getMetadataStorage } from 'class-validator';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ClientAction } from '../protocol/protocol.js';
import { ARRAY_LIMITS_OF_ACTION } from './dto/array-limits.js';
import { CreateRoomDto } from './dto/create-room.dto.js';
import { DeleteRoomDto } from './dto/delete-room.dto.js';
import { GetStateDto } from './dto/get-state.dto.js';
import { HelloDto } from './dto/hello.dto.js';
import { JoinRoomDto } from './dto/join-room.dto.js';
import { KickUserDto } from './dto/kick-user.dto.js';
import { LeaveRoomDto } from './dto/leave-room.dto.js';
import { PingDto } from './dto/ping.dto.js';
import { RefreshTokenDto } from './dto/refresh-token.dto.js';
import { ResumeDto } from './dto/resume.dto.js';
import { SendMessageDto } from './dto/send-message.dto.js';
import { SetRoleDto } from './dto/set-role.dto.js';
import { UpdateStateDto } from './dto/update-state.dto.js';
import { protocolValidationPipe } from './protocol-validation.pipe.js';

type DtoClass = new () => object;

/** What the pipe throws for `body`, or undefined when it passes. */
async function outcomeOf(metatype: DtoClass, body: unknown): Promise<unknown> {
  try {
    await protocolValidationPipe.transform(body, { metatype, type: 'body' });
    return undefined;
  } catch (error) {
    return error;
  }
}

/** `count` entries, each of which throws as soon as anything reads one of its keys. */
function untouchable(count: number): object[] {
  return Array.from({ length: count }, () =>
    Object.defineProperty({}, 'roomId', {
      enumerable: true,
      get: () => {
        throw new Error('an entry was read');
      },
    }),
  );
}

describe('ProtocolValidationPipe: arrays past their bound', () => {
  it.each([
    ['resume', 'rooms', 100, ResumeDto, {}],
    ['update_state', 'ops', 100, UpdateStateDto, { roomId: 'not a room id!' }],
    ['hello', 'capabilities', 16, HelloDto, {}],
  ] as const)(
    '%s: refuses %s longer than %d on its length, before any entry is read',
    async (_action, field, max, metatype, rest) => {
      const refusal = await outcomeOf(metatype, { ...rest, [field]: untouchable(max + 1) });
      expect(refusal).toBeInstanceOf(ProtocolError);
      expect(refusal).toMatchObject({
        code: 'VALIDATION_FAILED',
        message: `${field} must contain no more than ${max} elements`,
        details: { field },
      });
      // At the bound every entry is converted and checked, as before.
      expect(await outcomeOf(metatype, { ...rest, [field]: untouchable(max) })).toMatchObject({
        message: 'an entry was read',
      });
    },
  );
});

describe('arrayLimits', () => {
  /** The @ArrayMaxSize of each top-level field of a DTO, as class-validator holds them. */
  const arrayMaxSizes = (metatype: DtoClass): Record<string, number> =>
    Object.fromEntries(
      getMetadataStorage()
        .getTargetValidationMetadatas(metatype, '', true, false)
        .filter((metadata) => metadata.name === 'arrayMaxSize')
        .map((metadata) => [metadata.propertyName, metadata.constraints[0] as number]),
    );

  const requestDtos: Array<[string, DtoClass]> = [
    [ClientAction.CreateRoom, CreateRoomDto],
    [ClientAction.DeleteRoom, DeleteRoomDto],
    [ClientAction.GetState, GetStateDto],
    [ClientAction.Hello, HelloDto],
    [ClientAction.JoinRoom, JoinRoomDto],
    [ClientAction.KickUser, KickUserDto],
    [ClientAction.LeaveRoom, LeaveRoomDto],
    [ClientAction.Ping, PingDto],
    [ClientAction.RefreshToken, RefreshTokenDto],
    [ClientAction.Resume, ResumeDto],
    [ClientAction.SendMessage, SendMessageDto],
    [ClientAction.SetRole, SetRoleDto],
    [ClientAction.UpdateState, UpdateStateDto],
  ];

  it.each(requestDtos)(
    '%s: the checks before validation bound the same arrays as the DTO',
    (action, metatype) => {
      const declared = (metatype as { arrayLimits?: Record<string, number> }).arrayLimits;
      expect(declared ?? {}).toEqual(arrayMaxSizes(metatype));
      expect(ARRAY_LIMITS_OF_ACTION.get(action)).toBe(declared);
    },
  );
});
