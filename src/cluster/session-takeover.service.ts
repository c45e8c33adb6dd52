import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { CLUSTER, type Cluster } from './cluster.js';
import { RedisRoomStore } from './redis-room-store.js';

interface SessionNotice {
  userId: string;
  origin: string;
}

/**
 * Session replacement across instances: a userId that connects here closes its older socket on
 * any other instance (4000), and its memberships move here, as they do within one instance.
 * Announced on one cluster-wide channel, `P sessions`.
 */
@Injectable()
export class SessionTakeoverService implements OnModuleInit {
  private readonly logger = new Logger(SessionTakeoverService.name);

  constructor(
    @Inject(CLUSTER) private readonly cluster: Cluster,
    private readonly store: RedisRoomStore,
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    private readonly users: UsersService,
  ) {}

  async onModuleInit(): Promise<void> {
    const channel = this.channel();
    this.cluster.subscriber.on('message', (from: string, payload: string) => {
      if (from === channel) {
        this.onNotice(JSON.parse(payload) as SessionNotice);
      }
    });
    await this.cluster.subscriber.subscribe(channel);
    this.users.onConnect((connection) => void this.takeOver(connection));
  }

  /** Tells the other instances, then makes this socket a member of the user's rooms here. */
  private async takeOver(connection: Connection): Promise<void> {
    const { publisher, instanceId } = this.cluster;
    const notice: SessionNotice = { userId: connection.userId, origin: instanceId };
    try {
      await publisher.publish(this.channel(), JSON.stringify(notice));
      for (const roomId of await this.store.roomsOf(connection.userId)) {
        if (
          connection.rooms.has(roomId) ||
          this.users.connectionOf(connection.handle) !== connection
        ) {
          continue;
        }
        await this.bus.watch(roomId);
        if (await this.store.adopt(roomId, connection.userId)) {
          this.users.membership.completeJoin(connection, roomId);
        }
      }
    } catch (error) {
      this.logger.warn(`Could not take over the rooms of ${connection.userId}: ${String(error)}`);
    }
  }

  /** Another instance got this user: its socket here goes, its memberships stay in the store. */
  private onNotice(notice: SessionNotice): void {
    if (notice.origin === this.cluster.instanceId) {
      return;
    }
    const replaced = this.users.byUser(notice.userId);
    if (!replaced) {
      return;
    }
    this.users.disconnect(replaced.handle);
    for (const roomId of [...replaced.rooms]) {
      this.users.membership.remove(replaced, roomId);
    }
    replaced.close(CloseCode.SessionReplaced, CloseReason.SessionReplaced);
    this.logger.log(`User ${notice.userId} reconnected on another instance; replaced here`);
  }

  private channel(): string {
    return `${this.cluster.keyPrefix}sessions`;
  }
}
