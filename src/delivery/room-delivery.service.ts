import { Inject, Injectable } from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { ROOM_HISTORY, type HistoryEntry, type RoomHistory } from '../history/room-history.js';
import { ServerEvent, type ResumedRoom, type ServerMessage } from '../protocol/protocol.js';
import type {
  RequestOrigin,
  ResumedSeat,
  RoomChange,
  RoomChangeDelivery,
} from '../rooms/room-changes.js';
import type { QueuedFrame } from '../users/client-link.js';
import { UsersService } from '../users/users.service.js';
import { newsFilter } from './news-filter.js';
import { Replies } from './replies.js';

type ChangeOf<K extends RoomChange['kind']> = Extract<RoomChange, { kind: K }>;

/**
 * The one place that decides who gets which event when a room changes, and what the request's
 * sender gets as its reply: the room and state services only say what changed.
 */
@Injectable()
export class RoomDelivery implements RoomChangeDelivery {
  constructor(
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    private readonly fanout: Fanout,
    private readonly users: UsersService,
    private readonly replies: Replies,
    @Inject(ROOM_HISTORY) private readonly history: RoomHistory,
  ) {}

  deliver(change: RoomChange): Promise<void> | void {
    switch (change.kind) {
      case 'member_joined':
        return this.memberJoined(change);
      case 'member_left':
        return this.memberLeft(change);
      case 'member_updated':
        this.bus.publish(
          change.roomId,
          { event: ServerEvent.UserUpdated, data: { roomId: change.roomId, user: change.user } },
          change.user.id,
        );
        return;
      case 'member_resumed':
        return this.memberResumed(change);
      case 'member_resynced':
        this.replies.send(
          change.connection,
          change.roomInfo
            ? { event: ServerEvent.RoomJoined, data: { roomInfo: change.roomInfo } }
            : { event: ServerEvent.RoomLeft, data: { roomId: change.roomId } },
        );
        return;
      case 'member_returned':
        // Every member, itself included: it got the `user_left` of its removal too.
        this.bus.publish(change.roomId, {
          event: ServerEvent.UserJoined,
          data: { roomId: change.roomId, user: change.user },
        });
        return;
      case 'host_appointed':
        this.bus.publish(change.roomId, {
          event: ServerEvent.UserUpdated,
          data: { roomId: change.roomId, user: change.host },
        });
        return;
      case 'member_kicked':
        this.bus.sendToMember(change.roomId, change.userId, {
          event: ServerEvent.Kicked,
          data: { roomId: change.roomId },
        });
        return;
      case 'roles_changed':
        return this.rolesChanged(change);
      case 'room_deleted':
        return this.roomDeleted(change);
      case 'state_committed':
        return this.stateCommitted(change);
    }
  }

  /**
   * The joiner gets `room_joined` first, then what was held back for it while its join was
   * pending (only what its snapshot does not already hold); the others get `user_joined`, or
   * `user_updated` when a member joined again with another role.
   */
  private memberJoined(change: ChangeOf<'member_joined'>): void {
    const { roomId, origin, user } = change;
    const { connection } = origin;
    // Every event of the room so far is in the snapshot or among those held back, sent next.
    const position = this.history.position(roomId);
    const roomInfo = position ? { ...change.roomInfo, ...position } : change.roomInfo;
    this.replies.send(
      connection,
      { event: ServerEvent.RoomJoined, data: { roomInfo } },
      origin.requestId,
    );
    const isNews = newsFilter(change.roomInfo, connection.userId, (version) =>
      this.users.membership.admitsStateVersion(connection, roomId, version),
    );
    for (const held of change.held) {
      if (isNews(held)) {
        this.fanout.sendFrame(connection, held.frame);
      }
    }
    if (!change.alreadyMember) {
      this.bus.publish(
        roomId,
        { event: ServerEvent.UserJoined, data: { roomId, user } },
        connection.userId,
      );
    } else if (change.roleChanged) {
      this.bus.publish(
        roomId,
        { event: ServerEvent.UserUpdated, data: { roomId, user } },
        connection.userId,
      );
    }
  }

  /**
   * The `resumed` reply, then per room either the missed events from the history (when it still
   * has all of them) or, after the snapshot in the reply, what was held back; the others learn
   * the member is connected again.
   */
  private memberResumed(change: ChangeOf<'member_resumed'>): void {
    const { connection, requestId } = change.origin;
    const rooms: ResumedRoom[] = [];
    const frames: QueuedFrame[] = [];
    for (const seat of change.seats) {
      const position = this.history.position(seat.roomId);
      const missed = this.missedEvents(seat, connection.userId);
      if (position && missed) {
        rooms.push({ roomId: seat.roomId, recovered: true, ...position });
        // Everything held back is also among the missed events: the history has it all.
        frames.push(...missed.map((entry) => entry.frame));
        continue;
      }
      const roomInfo = position ? { ...seat.roomInfo, ...position } : seat.roomInfo;
      rooms.push({ roomId: seat.roomId, recovered: false, roomInfo });
      const isNews = newsFilter(seat.roomInfo, connection.userId, (version) =>
        this.users.membership.admitsStateVersion(connection, seat.roomId, version),
      );
      frames.push(...seat.held.filter(isNews).map((held) => held.frame));
    }
    this.replies.send(
      connection,
      { event: ServerEvent.Resumed, data: { rooms, lost: [...change.lost] } },
      requestId,
    );
    for (const frame of frames) {
      this.fanout.sendFrame(connection, frame);
    }
    for (const seat of change.seats) {
      this.bus.publish(
        seat.roomId,
        { event: ServerEvent.UserUpdated, data: { roomId: seat.roomId, user: seat.user } },
        connection.userId,
      );
    }
  }

  private missedEvents(seat: ResumedSeat, userId: string): readonly HistoryEntry[] | undefined {
    const { from } = seat;
    if (from?.epoch === undefined || from.lastSeq === undefined) {
      return undefined;
    }
    return this.history.since(seat.roomId, from.epoch, from.lastSeq, userId);
  }

  /** `leave_room`'s sender gets `room_left`; a kick's sender gets the `user_left` as its reply. */
  private memberLeft(change: ChangeOf<'member_left'>): void {
    const { roomId, userId, origin } = change;
    const userLeft = { event: ServerEvent.UserLeft, data: { roomId, userId } };
    if (origin && change.kicked) {
      this.publishWithReply(origin, roomId, userLeft);
    } else {
      if (origin) {
        this.replies.send(
          origin.connection,
          { event: ServerEvent.RoomLeft, data: { roomId } },
          origin.requestId,
        );
      }
      if (change.announce !== false) {
        this.bus.publish(roomId, userLeft);
      }
    }
    if (change.newHost) {
      this.bus.publish(roomId, {
        event: ServerEvent.UserUpdated,
        data: { roomId, user: change.newHost },
      });
    }
  }

  private rolesChanged(change: ChangeOf<'roles_changed'>): void {
    const { roomId, origin } = change;
    for (const user of change.alsoChanged) {
      this.bus.publish(roomId, { event: ServerEvent.UserUpdated, data: { roomId, user } });
    }
    this.publishWithReply(origin, roomId, {
      event: ServerEvent.UserUpdated,
      data: { roomId, user: change.target },
    });
  }

  private roomDeleted(change: ChangeOf<'room_deleted'>): void {
    const { roomId, origin } = change;
    const message = { event: ServerEvent.RoomDeleted, data: { roomId, reason: change.reason } };
    if (origin) {
      this.publishWithReply(origin, roomId, message);
    } else if (change.announce) {
      this.bus.publish(roomId, message);
    }
    this.fanout.forgetRoom(roomId);
    this.history.forget(roomId);
  }

  /** Every member gets it in commit order; the sender's copy is its reply. */
  private stateCommitted(change: ChangeOf<'state_committed'>): Promise<void> {
    const { roomId, origin } = change;
    const message = {
      event: ServerEvent.StateUpdated,
      data: {
        roomId,
        version: change.version,
        ...(change.patch ? { patch: change.patch } : {}),
        ...(change.ops ? { ops: change.ops } : {}),
        updatedBy: origin.connection.userId,
      },
    };
    // A shared store published it with the commit; this instance's members and the sender get
    // it in commit order, and this resolves once they have.
    return this.bus.deliverCommitted(roomId, message, origin.connection.userId, (numbered) =>
      this.replies.send(origin.connection, numbered ?? message, origin.requestId),
    );
  }

  /** The room gets the event; the sender's copy is its reply (with its requestId). */
  private publishWithReply<E extends ServerEvent>(
    origin: RequestOrigin,
    roomId: string,
    message: ServerMessage<E>,
  ): void {
    this.bus.publishWithReply(roomId, message, origin.connection.userId, (published) =>
      this.replies.send(origin.connection, published, origin.requestId),
    );
  }
}
