import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { UsersService } from '../users/users.service.js';
import { CLUSTER, type Cluster } from './cluster.js';

/**
 * After a Redis outage, each instance registers the memberships of its live sockets again, so a
 * Redis that came back empty (restarted without persistence) knows every room and member that
 * is still connected, without clients reconnecting. A member still on record is left as it is.
 */
@Injectable()
export class RedisRecoveryService implements OnModuleInit {
  private readonly logger = new Logger(RedisRecoveryService.name);
  private wasDown = false;

  constructor(
    @Inject(CLUSTER) private readonly cluster: Cluster | null,
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly users: UsersService,
  ) {}

  onModuleInit(): void {
    if (!this.cluster) {
      return;
    }
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
        try {
          await this.store.join({
            roomId,
            userId: connection.userId,
            name: profile?.name ?? connection.userId,
            avatar: profile?.avatar,
            requestedRole: profile?.role,
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
    this.logger.log(`Redis is back: ${registered} membership(s) of live sockets registered`);
  }
}
