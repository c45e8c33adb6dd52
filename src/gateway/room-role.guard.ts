import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { WebSocket } from 'ws';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ID_PATTERN, ROLE_RANK } from '../protocol/protocol.js';
import { RoomsService } from '../rooms/rooms.service.js';
import { UsersService } from '../users/users.service.js';
import { MinRole } from './min-role.decorator.js';

/**
 * Room-scoped authorization: the room exists (ROOM_NOT_FOUND), the sender is a member
 * (NOT_IN_ROOM) and holds at least the handler's MinRole (FORBIDDEN). A malformed roomId is left
 * to the handler's validation, which names the field.
 */
@Injectable()
export class RoomRoleGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly rooms: RoomsService,
    private readonly users: UsersService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const required = this.reflector.get(MinRole, context.getHandler());
    const ws = context.switchToWs();
    const roomId = (ws.getData<{ roomId?: unknown }>() ?? {}).roomId;
    const connection = this.users.connectionOf(ws.getClient<WebSocket>());
    if (!required || !connection || typeof roomId !== 'string' || !ID_PATTERN.test(roomId)) {
      return true;
    }
    const role = await this.rooms.roleOf(roomId, connection.userId);
    if (role === undefined) {
      throw ProtocolError.notInRoom(roomId);
    }
    if (ROLE_RANK[role] < ROLE_RANK[required]) {
      throw ProtocolError.forbidden(`This action needs the ${required} role; you are ${role}`);
    }
    return true;
  }
}
