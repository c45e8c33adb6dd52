import { IsIn } from 'class-validator';
import { ROLES, type Role } from '../../protocol/protocol.js';
import { RoomRequestDto } from './room-request.dto.js';
import { IsProtocolId } from './validators.js';

export class SetRoleDto extends RoomRequestDto {
  @IsProtocolId() targetUserId: string;
  @IsIn(ROLES) role: Role;
}
