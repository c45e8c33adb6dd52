import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import type { RoomConfig } from '../../protocol/protocol.js';
import { IsProtocolId, OptionalRequestId } from './validators.js';

// `implements` RoomConfig, the type the SDK sends: a field typed differently here fails to compile.
export class RoomConfigDto implements RoomConfig {
  @IsOptional() @MaxLength(128) @IsString() name?: string;
  // The server's MAX_USERS_PER_ROOM bound is checked by RoomsService, which knows it.
  @IsOptional() @IsInt() @Min(1) @Max(1_000_000) maxUsers?: number;
  @IsOptional() @MaxLength(128) @MinLength(1) @IsString() password?: string;
  @IsOptional() @IsBoolean() persistent?: boolean;
  @IsOptional() @IsIn(['editor', 'viewer']) defaultRole?: 'editor' | 'viewer';
}

export class CreateRoomDto {
  @OptionalRequestId() requestId?: string;
  @IsOptional() @IsProtocolId() roomId?: string;
  @IsOptional() @ValidateNested() @IsObject() @Type(() => RoomConfigDto) config?: RoomConfigDto;
}
