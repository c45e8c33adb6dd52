import {
  Controller,
  Get,
  Inject,
  Req,
  ServiceUnavailableException,
  UseGuards,
} from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { AuthService } from '../auth/auth.service.js';
import { Fanout } from '../bus/fanout.service.js';
import { CLUSTER_COORDINATOR, type ClusterCoordinator } from '../cluster/cluster-coordinator.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { UsersService } from '../users/users.service.js';

/**
 * `/stats`: the spec's fields, with new ones beside them. AUTH_MODE=api-key: needs the key.
 * AUTH_MODE=jwt: room ids and names only for the API key or a token with `admin: true`;
 * anyone else gets the counts.
 */
@Controller('stats')
@UseGuards(ApiKeyGuard)
export class StatsController {
  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    private readonly users: UsersService,
    private readonly fanout: Fanout,
    @Inject(CLUSTER_COORDINATOR) private readonly cluster: ClusterCoordinator,
    private readonly auth: AuthService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  @Get()
  async stats(@Req() request: IncomingMessage) {
    let summaries;
    let totals;
    try {
      [summaries, totals] = await Promise.all([this.store.list(), this.cluster.clusterTotals()]);
    } catch (error) {
      throw new ServiceUnavailableException(`Room store unavailable: ${String(error)}`);
    }
    const rooms = summaries.map((room) => ({
      ...room,
      droppedMessages: this.fanout.droppedMessagesIn(room.roomId),
    }));
    const counts = {
      totalUsers: rooms.reduce((sum, room) => sum + room.userCount, 0),
      totalRooms: rooms.length,
      connections: totals?.connections ?? this.users.count(),
      droppedMessages: totals?.droppedMessages ?? this.fanout.droppedMessages(),
      ...(totals
        ? {
            instances: totals.instances,
            redisRecoveries: totals.redisRecoveries,
            ...(totals.lastRedisRecoveryAt
              ? { lastRedisRecoveryAt: totals.lastRedisRecoveryAt }
              : {}),
          }
        : {}),
    };
    const showRooms = this.config.authMode === 'none' || (await this.auth.isAdmin(request));
    return showRooms ? { rooms, ...counts } : counts;
  }
}
