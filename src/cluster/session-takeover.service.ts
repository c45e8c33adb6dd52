import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { roleCapOf } from '../auth/identity.js';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import { RoomsService } from '../rooms/rooms.service.js';
import type { Connection } from '../users/connection.js';
import { ResumeService } from '../resume/resume.service.js';
import { UsersService } from '../users/users.service.js';
import { CLUSTER, type Cluster } from './cluster.js';
import { RedisRoomStore } from './redis-room-store.js';

interface SessionNotice {
  userId: string;
  origin: string;
  /** The new connection resumes with a token: seats held elsewhere wait for its claim. */
  resuming?: boolean;
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
    private readonly rooms: RoomsService,
    private readonly users: UsersService,
    private readonly resume: ResumeService,
  ) {}

  async onModuleInit(): Promise<void> {
    const channel = this.channel();
    this.cluster.subscriber.on('message', (from: string, payload: string) => {
      if (from === channel) {
        this.onNotice(JSON.parse(payload) as SessionNotice);
      }
    });
    await this.cluster.subscriber.subscribe(channel);
    // The new socket's first frames wait for the takeover: a `get_state` sent right after
    // `connected` finds the rooms there, as it does when the old socket was on this instance.
    this.users.onConnect((connection) => this.takeOver(connection));
  }

  /**
   * Tells the other instances, then makes this socket a member of the user's rooms here through
   * the normal join path: events of the room published meanwhile are held back for it, the
   * connection's room cap applies, and it gets each room's `room_joined` (without requestId).
   */
  private async takeOver(connection: Connection): Promise<void> {
    const { publisher, instanceId } = this.cluster;
    const notice: SessionNotice = {
      userId: connection.userId,
      origin: instanceId,
      ...(connection.resuming ? { resuming: true } : {}),
    };
    let roomIds: string[];
    try {
      await publisher.publish(this.channel(), JSON.stringify(notice));
      if (connection.resuming) {
        return; // Its `resume` takes its held seats back, with what it missed.
      }
      roomIds = await this.store.roomsOf(connection.userId);
    } catch (error) {
      this.logger.warn(`Could not take over the rooms of ${connection.userId}: ${String(error)}`);
      return;
    }
    for (const roomId of roomIds) {
      if (connection.rooms.has(roomId) || !this.users.isCurrent(connection)) {
        continue;
      }
      try {
        await this.rooms.join(connection, {
          roomId,
          mayCreateRoom: false,
          maxRole: roleCapOf(connection.identity, roomId),
          takeOver: true,
        });
      } catch (error) {
        this.logger.warn(`Could not take over ${connection.userId} in ${roomId}: ${String(error)}`);
      }
    }
  }

  /**
   * Another instance got this user: its socket here goes. Without a resume its memberships stay
   * in the store for the takeover there; with one, they are held as after a drop until the resume
   * claims them (or the grace ends). Seats held here already stay held either way. Without a
   * resume the socket's token stops working, as after a plain reconnect on one instance.
   */
  private onNotice(notice: SessionNotice): void {
    if (notice.origin === this.cluster.instanceId) {
      return;
    }
    const replaced = this.users.byUser(notice.userId);
    if (!replaced) {
      return;
    }
    this.users.disconnect(replaced.handle);
    if (notice.resuming) {
      void this.resume.detach(replaced);
    } else {
      for (const roomId of [...replaced.rooms]) {
        this.users.membership.remove(replaced, roomId);
      }
      // As a plain reconnect on one instance: the replaced socket's token resumes nothing now.
      this.resume.replacedElsewhere(notice.userId);
    }
    replaced.close(CloseCode.SessionReplaced, CloseReason.SessionReplaced);
    this.logger.log(`User ${notice.userId} reconnected on another instance; replaced here`);
  }

  private channel(): string {
    return `${this.cluster.keyPrefix}sessions`;
  }
}
