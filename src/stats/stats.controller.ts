import { Controller, Get, Inject, ServiceUnavailableException, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { Fanout } from '../bus/fanout.service.js';
import { InstancePresenceService } from '../cluster/instance-presence.service.js';
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
    private readonly presence: InstancePresenceService,
  ) {}

  @Get()
  async stats() {
    let summaries;
    let cluster;
    try {
      [summaries, cluster] = await Promise.all([this.store.list(), this.presence.clusterTotals()]);
    } catch (error) {
      throw new ServiceUnavailableException(`Room store unavailable: ${String(error)}`);
    }
    const rooms = summaries.map((room) => ({
      ...room,
      droppedMessages: this.fanout.droppedMessagesIn(room.roomId),
    }));
    return {
      rooms,
      totalUsers: rooms.reduce((sum, room) => sum + room.userCount, 0),
      totalRooms: rooms.length,
      connections: cluster?.connections ?? this.users.count(),
      droppedMessages: cluster?.droppedMessages ?? this.fanout.droppedMessages(),
      ...(cluster ? { instances: cluster.instances } : {}),
    };
  }
}
