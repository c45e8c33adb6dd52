import { Type } from 'class-transformer';
import {
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { ROLES, type Avatar, type Role, type UserInfo } from '../../protocol/protocol.js';
import { IsProtocolId, OptionalNotNull, OptionalRequestId } from './validators.js';

// class-validator reports the decorator nearest the property first: the type check sits there.
// An avatar field may be left out, but a null one would be stored and relayed as it came.
export class AvatarDto {
  @OptionalNotNull() @MaxLength(32) @IsString() type?: string;
  @OptionalNotNull()
  @Matches(/^#[0-9A-Fa-f]{3,8}$/, { message: 'color must be a hex colour like #3498db' })
  @IsString()
  color?: string;
  @OptionalNotNull() @MaxLength(64) @IsString() displayName?: string;
  @OptionalNotNull() @MaxLength(2048) @IsString() modelUrl?: string;
}

const AVATAR_FIELDS = ['type', 'color', 'displayName', 'modelUrl'] as const;

/** Keeps only the avatar fields we know, so nothing else a client adds is stored or relayed. */
export function pickAvatar(avatar: AvatarDto): Avatar {
  const picked: Avatar = {};
  for (const key of AVATAR_FIELDS) {
    if (avatar[key] !== undefined) {
      picked[key] = avatar[key];
    }
  }
  return picked;
}

// `implements` UserInfo, the type the SDK sends: a field typed differently here fails to compile.
export class UserInfoDto implements UserInfo {
  @IsOptional() @IsProtocolId() userId?: string;
  @IsOptional() @MaxLength(64) @MinLength(1) @IsString() name?: string;
  @IsOptional() @IsIn(ROLES) role?: Role;
  @IsOptional() @ValidateNested() @IsObject() @Type(() => AvatarDto) avatar?: AvatarDto;
}

export class JoinRoomDto {
  @OptionalRequestId() requestId?: string;
  @IsProtocolId() roomId: string;
  @IsOptional() @MaxLength(128) @IsString() password?: string;
  @IsOptional() @ValidateNested() @IsObject() @Type(() => UserInfoDto) userInfo?: UserInfoDto;
}
