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
import { IsProtocolId, OptionalRequestId } from './validators.js';

export class AvatarDto {
  @IsOptional() @IsString() @MaxLength(32) type?: string;
  @IsOptional()
  @Matches(/^#[0-9A-Fa-f]{3,8}$/, { message: 'color must be a hex colour like #3498db' })
  color?: string;
  @IsOptional() @IsString() @MaxLength(64) displayName?: string;
  @IsOptional() @IsString() @MaxLength(2048) modelUrl?: string;
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
  @IsOptional() @IsString() @MinLength(1) @MaxLength(64) name?: string;
  @IsOptional() @IsIn(ROLES) role?: Role;
  @IsOptional() @ValidateNested() @IsObject() @Type(() => AvatarDto) avatar?: AvatarDto;
}

export class JoinRoomDto {
  @OptionalRequestId() requestId?: string;
  @IsProtocolId() roomId: string;
  @IsOptional() @IsString() @MaxLength(128) password?: string;
  @IsOptional() @ValidateNested() @IsObject() @Type(() => UserInfoDto) userInfo?: UserInfoDto;
}
