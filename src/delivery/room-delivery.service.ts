import { Inject, Injectable } from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import { LocalDelivery } from '../bus/local-delivery.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { ROOM_HISTORY, type HistoryPosition, type RoomHistory } from '../history/room-history.js';
import {
  ServerEvent,
  type ResumedRoom,
  type RoomInfo,
  type ServerMessage,
} from '../protocol/protocol.js';
import type { RequestOrigin, RoomChange, RoomChangeDelivery } from '../rooms/room-changes.js';
import type { QueuedFrame } from '../users/client-link.js';
import type { BufferedEvent } from '../users/local-membership.js';
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
    private readonly local: LocalDelivery,
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
        if (change.roomInfo) {
          this.local.trackRoster(change.connection, change.roomId, change.roomInfo.users, []);
        } else {
          this.local.untrackRoster(change.connection, change.roomId);
        }
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
   * pending (only what its snapshot does not already hold), and no arrival or departure its
   * snapshot already holds announced later (LocalDelivery.trackRoster); the others get
   * `user_joined`, or `user_updated` when a member joined again with another role.
   */
  private memberJoined(change: ChangeOf<'member_joined'>): void {
    const { roomId, origin, user } = change;
    const { connection } = origin;
    // Every event of the room so far is in the snapshot or among those held back, sent next.
    const position = this.positionOf(roomId, change.roomInfo);
    const roomInfo = position ? { ...change.roomInfo, ...position } : change.roomInfo;
    if (position) {
      // A resume must not reach back past the join: the member was not there for those events.
      this.history.markJoined(roomId, connection.userId, position);
    }
    this.replies.send(
      connection,
      { event: ServerEvent.RoomJoined, data: { roomInfo } },
      origin.requestId,
    );
    const isNews = newsFilter(change.roomInfo, connection.userId, (version) =>
      this.users.membership.admitsStateVersion(connection, roomId, version),
    );
    // A snapshot with its own position (a cluster's) holds every event numbered up to it.
    const snapshotSeq = change.roomInfo.seq ?? 0;
    const news = change.held.filter(
      (held) => (seqOf(held) ?? Infinity) > snapshotSeq && isNews(held),
    );
    for (const held of news) {
      this.fanout.sendFrame(connection, held.frame);
    }
    this.local.trackRoster(connection, roomId, change.roomInfo.users, news);
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
      const position = this.positionOf(seat.roomId, seat.roomInfo);
      if (position && seat.joined) {
        // Joined anew (its seat was gone): a later resume must not reach back past this.
        this.history.markJoined(seat.roomId, connection.userId, position);
      }
      if (position && seat.missed) {
        // What was held back follows the history's part, each event once (by its seq).
        let seq = seat.from?.lastSeq ?? position.seq;
        for (const entry of seat.missed) {
          frames.push(entry.frame);
          seq = entry.seq;
        }
        for (const held of seat.held) {
          const heldSeq = seqOf(held);
          if (heldSeq === undefined || heldSeq > seq) {
            frames.push(held.frame);
            seq = heldSeq ?? seq;
          }
        }
        rooms.push({ roomId: seat.roomId, recovered: true, epoch: position.epoch, seq });
        continue;
      }
      const roomInfo = position ? { ...seat.roomInfo, ...position } : seat.roomInfo;
      rooms.push({ roomId: seat.roomId, recovered: false, roomInfo });
      const isNews = newsFilter(seat.roomInfo, connection.userId, (version) =>
        this.users.membership.admitsStateVersion(connection, seat.roomId, version),
      );
      const news = seat.held.filter(isNews);
      frames.push(...news.map((held) => held.frame));
      this.local.trackRoster(connection, seat.roomId, seat.roomInfo.users, news);
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
      const event = seat.joined ? ServerEvent.UserJoined : ServerEvent.UserUpdated;
      this.bus.publish(
        seat.roomId,
        { event, data: { roomId: seat.roomId, user: seat.user } },
        connection.userId,
      );
    }
  }

  /** A snapshot's place in the room's history: its own (a cluster's store), or the history's. */
  private positionOf(roomId: string, snapshot: RoomInfo): HistoryPosition | undefined {
    if (snapshot.epoch !== undefined && snapshot.seq !== undefined) {
      return { epoch: snapshot.epoch, seq: snapshot.seq };
    }
    return this.history.position(roomId);
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

/** The `seq` of a held event, when it has one (resume on). */
function seqOf(held: BufferedEvent): number | undefined {
  return (held.data as { seq?: number }).seq;
}
