import { applyDecorators, UseGuards } from '@nestjs/common';
import type { Role } from '../protocol/protocol.js';
import { MinRole } from './min-role.decorator.js';
import { RoomRoleGuard } from './room-role.guard.js';

/** The handler acts on `roomId`: the sender must be a member holding at least `role`. */
export const RequireRoomRole = (role: Role) =>
  applyDecorators(MinRole(role), UseGuards(RoomRoleGuard));
