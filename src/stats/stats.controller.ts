import { Controller, Get, Inject, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { Fanout } from '../bus/fanout.service.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { UsersService } from '../users/users.service.js';

/** `/stats`: the spec's fields, with new ones beside them. Needs the API key when one is set. */
@Controller('stats')
@UseGuards(ApiKeyGuard)
export class StatsController {
  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    private readonly users: UsersService,
    private readonly fanout: Fanout,
  ) {}

  @Get()
  async stats() {
    const rooms = (await this.store.list()).map((room) => ({
      ...room,
      droppedMessages: this.fanout.droppedMessagesIn(room.roomId),
    }));
    return {
      rooms,
      totalUsers: rooms.reduce((sum, room) => sum + room.userCount, 0),
      totalRooms: rooms.length,
      connections: this.users.count(),
      droppedMessages: this.fanout.droppedMessages(),
    };
  }
}
