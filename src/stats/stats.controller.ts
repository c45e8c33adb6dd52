import {
  BadRequestException,
  Controller,
  ForbiddenException,
  Get,
  Inject,
  NotFoundException,
  Param,
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
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, ID_PATTERN } from '../protocol/protocol.js';
import { PoseTicker } from '../rooms/pose-ticker.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { UsersService } from '../users/users.service.js';

/**
 * `/stats`: the spec's fields, with new ones beside them. AUTH_MODE=api-key: needs the key.
 * AUTH_MODE=jwt: room ids and names (and the instance list) only for the API key or a token with
 * `admin: true`; anyone else gets the counts. `/stats/rooms/:roomId`, a room's members, is for
 * the same callers that see room ids.
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
    private readonly ticker: PoseTicker,
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
      ...(this.ticker.enabled ? { skippedPoseTicks: this.ticker.skippedTicks } : {}),
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
    if (!(await this.showsRooms(request))) {
      return counts;
    }
    return { rooms, ...counts, ...(totals ? { instanceList: totals.instanceList } : {}) };
  }

  /** One room and its members now, in join order: who is in it, their roles, who is connected. */
  @Get('rooms/:roomId')
  async room(@Req() request: IncomingMessage, @Param('roomId') roomId: string) {
    if (!(await this.showsRooms(request))) {
      throw new ForbiddenException('Room details need the API key or an admin token');
    }
    if (!ID_PATTERN.test(roomId)) {
      throw new BadRequestException('roomId must be 1-64 characters of [A-Za-z0-9._-]');
    }
    try {
      const users = await this.store.members(roomId);
      return {
        roomId,
        userCount: users.length,
        droppedMessages: this.fanout.droppedMessagesIn(roomId),
        users,
      };
    } catch (error) {
      if (error instanceof ProtocolError && error.code === ErrorCode.RoomNotFound) {
        throw new NotFoundException(`Room ${roomId} not found`);
      }
      throw new ServiceUnavailableException(`Room store unavailable: ${String(error)}`);
    }
  }

  private async showsRooms(request: IncomingMessage): Promise<boolean> {
    return this.config.authMode === 'none' || (await this.auth.isAdmin(request));
  }
}
