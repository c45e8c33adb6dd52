import { roleCapOf } from '../auth/identity.js';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { RoomsService } from '../rooms/rooms.service.js';
import { UsersService } from '../users/users.service.js';
import { CLUSTER, type Cluster } from './cluster.js';
import { RedisRoomStore } from './redis-room-store.js';

/**
 * After a Redis outage, each instance registers the memberships of its live sockets again, so a
 * Redis that came back empty (restarted without persistence) knows every room and member that
 * is still connected, without clients reconnecting. A member still on record is left as it is;
 * one whose socket closed during the outage is removed, and its rooms are told.
 */
@Injectable()
export class RedisRecoveryService implements OnModuleInit {
  private readonly logger = new Logger(RedisRecoveryService.name);
  private wasDown = false;

  constructor(
    @Inject(CLUSTER) private readonly cluster: Cluster,
    private readonly store: RedisRoomStore,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly users: UsersService,
    private readonly rooms: RoomsService,
  ) {}

  onModuleInit(): void {
    const { publisher } = this.cluster;
    publisher.on('close', () => {
      this.wasDown = true;
    });
    publisher.on('ready', () => {
      if (this.wasDown) {
        this.wasDown = false;
        void this.registerLiveMembers();
      }
    });
  }

  async registerLiveMembers(): Promise<void> {
    let registered = 0;
    for (const connection of [...this.users.all()]) {
      for (const roomId of [...connection.rooms]) {
        const profile = connection.profiles.get(roomId);
        const maxRole = roleCapOf(connection.identity, roomId);
        try {
          // A member still on record stays as it is; one Redis lost is admitted again with the
          // cap its token gives it. A room Redis lost comes back without a password or an owner.
          await this.store.join({
            roomId,
            userId: connection.userId,
            name: profile?.name ?? connection.userId,
            avatar: profile?.avatar,
            requestedRole: profile?.role,
            ...(maxRole ? { maxRole } : {}),
            restore: true,
            now: Date.now(),
            configForNewRoom: {
              maxUsers: this.config.maxUsersPerRoom,
              persistent: false,
              defaultRole: 'editor',
            },
            maxRooms: this.config.maxRooms,
          });
          registered++;
        } catch (error) {
          this.logger.warn(
            `Could not register ${connection.userId} in ${roomId} again: ${String(error)}`,
          );
        }
      }
    }
    const removed = await this.removeDeparted().catch((error: unknown) => {
      this.logger.warn(`Could not remove members that left during the outage: ${String(error)}`);
      return 0;
    });
    this.logger.log(
      `Redis is back: ${registered} membership(s) of live sockets registered, ` +
        `${removed} that ended during the outage removed`,
    );
  }

  /** Members on record for this instance whose socket closed while Redis was away. */
  private async removeDeparted(): Promise<number> {
    const { instanceId } = this.cluster;
    let removed = 0;
    for (const { roomId, userId } of await this.store.membersOf(instanceId)) {
      if (this.users.byUser(userId)?.rooms.has(roomId)) {
        continue;
      }
      const outcome = await this.store.removeGhost(roomId, userId, instanceId, Date.now());
      if (outcome) {
        removed++;
        await this.rooms.announceDeparture(roomId, userId, outcome, 'disconnected');
      }
    }
    return removed;
  }
}
