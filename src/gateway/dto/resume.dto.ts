import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { IsProtocolId, OptionalRequestId } from './validators.js';

/** The most rooms one `resume` may list. */
export const MAX_RESUME_ROOMS = 100;

/** What the client has of one room: the epoch and last `seq` of its room_joined or events. */
export class ResumePositionDto {
  @IsProtocolId() roomId: string;
  @IsOptional() @MaxLength(64) @IsString() epoch?: string;
  @IsOptional() @Max(Number.MAX_SAFE_INTEGER) @Min(0) @IsInt() lastSeq?: number;
}

export class ResumeDto {
  @OptionalRequestId() requestId?: string;
  /** Not needed when the upgrade carried it (`?resume=`). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,128}$/, { message: 'token must be a resumeToken' })
  @IsString()
  token?: string;
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_RESUME_ROOMS)
  // A room listed twice would be taken back twice, and its members told twice.
  @ArrayUnique(roomIdOf, { message: 'rooms must not list a room twice' })
  @ValidateNested({ each: true })
  @IsObject({ each: true, message: 'each of rooms must be an object' })
  @Type(() => ResumePositionDto)
  rooms?: ResumePositionDto[];

  /** Checked on the body as received, before any entry is looked at (array-limits.ts). */
  static readonly arrayLimits = { rooms: MAX_RESUME_ROOMS };
}

/** An entry's roomId; the entry itself when it has none, for the nested checks to refuse. */
function roomIdOf(entry: unknown): unknown {
  const roomId = (entry as { roomId?: unknown } | null)?.roomId;
  return typeof roomId === 'string' ? roomId : entry;
}
