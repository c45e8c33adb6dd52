import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { WebSocket } from 'ws';
import { ID_PATTERN } from '../protocol/protocol.js';
import { assertRoleAtLeast } from '../rooms/room-errors.js';
import { RoomsService } from '../rooms/rooms.service.js';
import { UsersService } from '../users/users.service.js';
import { MinRole } from './min-role.decorator.js';

/**
 * Room-scoped authorization: the room exists (ROOM_NOT_FOUND), the sender's connection has joined
 * it (NOT_IN_ROOM) and holds at least the handler's MinRole (FORBIDDEN). A malformed roomId is left
 * to the handler's validation, which names the field.
 *
 * An early refusal only: the role may change before the handler writes, so the store checks the
 * actor again in the same step as the write (RoomActor).
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
    // The store knows users, not sockets: while a dropped socket's seat is held, another socket
    // of the same user has a role there too, but has joined nothing (it gets none of the room's
    // events). Only the socket that joined or resumed acts for the seat, as for a broadcast.
    assertRoleAtLeast(roomId, connection.rooms.has(roomId) ? role : undefined, required);
    return true;
  }
}
