import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, type ResumePosition } from '../protocol/protocol.js';
import {
  ROOM_CHANGE_DELIVERY,
  type ResumedSeat,
  type RoomChangeDelivery,
} from '../rooms/room-changes.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { RoomsService } from '../rooms/rooms.service.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';

/** One user's resume state on this instance. */
interface Session {
  readonly userId: string;
  /** The token given to its current connection. */
  token: string;
  /** The token of the connection that dropped, while its seats are held. */
  heldToken?: string;
  /** The rooms whose seats are held for it. */
  readonly heldRooms: Set<string>;
  graceTimer?: NodeJS.Timeout;
}

/**
 * Seats held after a dropped connection, and taking them back (docs/resume.md). A connection that
 * drops without a close frame (or whose heartbeat died) keeps its rooms for RECONNECT_GRACE_MS,
 * shown to the others as `connected: false`; a `resume` with its token within that time takes
 * them back, with what it missed. When the time is up it leaves, as a closed connection does.
 */
@Injectable()
export class ResumeService implements OnApplicationShutdown {
  private readonly logger = new Logger(ResumeService.name);
  private readonly byUser = new Map<string, Session>();
  private readonly byToken = new Map<string, Session>();
  /** Connections that came with a valid `?resume=` token: their `resume` needs none. */
  private readonly claimed = new WeakSet<Connection>();

  constructor(
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    private readonly users: UsersService,
    private readonly rooms: RoomsService,
    @Inject(ROOM_CHANGE_DELIVERY) private readonly delivery: RoomChangeDelivery,
  ) {}

  get enabled(): boolean {
    return this.config.resume.graceMs > 0;
  }

  /**
   * The user a `?resume=` token on an upgrade belongs to; undefined when it is not a token of a
   * session here, or the upgrade's own identity names someone else.
   */
  userOfToken(token: string, identityUserId: string | undefined): string | undefined {
    const session = this.byToken.get(token);
    if (!session || (identityUserId !== undefined && identityUserId !== session.userId)) {
      return undefined;
    }
    return session.userId;
  }

  /** The connection came with a valid `?resume=` token: its `resume` may omit it. */
  markClaimed(connection: Connection): void {
    this.claimed.add(connection);
  }

  /** A fresh token for the user's new connection; its earlier one stops working. */
  issueToken(userId: string): string | undefined {
    if (!this.enabled) {
      return undefined;
    }
    let session = this.byUser.get(userId);
    if (!session) {
      session = { userId, token: '', heldRooms: new Set() };
      this.byUser.set(userId, session);
    } else if (session.token !== session.heldToken) {
      this.byToken.delete(session.token);
    }
    session.token = randomBytes(24).toString('base64url');
    this.byToken.set(session.token, session);
    return session.token;
  }

  /**
   * The connection dropped: its rooms keep the seat, marked `connected: false`, until it resumes
   * or the grace ends. Its local memberships end now.
   */
  async detach(connection: Connection): Promise<void> {
    const session = this.byUser.get(connection.userId);
    const roomIds = [...connection.rooms];
    if (!session) {
      return;
    }
    if (roomIds.length === 0 && session.heldRooms.size === 0) {
      this.forget(session);
      return;
    }
    for (const roomId of roomIds) {
      this.users.membership.remove(connection, roomId);
    }
    await this.hold(session, roomIds);
  }

  /** The user's connection closed for good (a close frame, the server's close): its session ends. */
  async end(userId: string): Promise<void> {
    const session = this.byUser.get(userId);
    if (!session) {
      return;
    }
    this.forget(session);
    await this.releaseSeats(session);
  }

  /**
   * Takes the held seats back for `connection`: one `resumed` reply, then per room the missed
   * events or a snapshot (see RoomDelivery). RESUME_FAILED when the token is not valid for it.
   */
  async resume(
    connection: Connection,
    token: string | undefined,
    positions: readonly ResumePosition[],
    requestId?: string,
  ): Promise<void> {
    const session = this.sessionFor(connection, token);
    clearTimeout(session.graceTimer);
    this.users.release(session.userId);
    if (session.heldToken !== undefined && session.heldToken !== session.token) {
      this.byToken.delete(session.heldToken);
    }
    session.heldToken = undefined;
    const heldRooms = [...session.heldRooms];
    session.heldRooms.clear();
    const from = new Map(positions.map((position) => [position.roomId, position]));
    const taken = await this.takeSeats(connection, heldRooms, from);
    if (!this.users.isCurrent(connection)) {
      // Dropped again while the seats were taken back: they stay held for the next try.
      for (const { roomId } of taken) {
        this.users.membership.abortJoin(connection, roomId);
      }
      await this.hold(
        session,
        taken.map((seat) => seat.roomId),
      );
      return;
    }
    const seats: ResumedSeat[] = taken.map((seat) => ({
      ...seat,
      held: this.users.membership.completeJoin(
        connection,
        seat.roomId,
        seat.roomInfo.state.version,
      ),
    }));
    for (const seat of seats) {
      connection.profiles.set(seat.roomId, seat.user);
    }
    const lost = positions
      .map((position) => position.roomId)
      .filter((roomId) => !seats.some((seat) => seat.roomId === roomId));
    void this.delivery.deliver({
      kind: 'member_resumed',
      origin: { connection, requestId },
      seats,
      lost,
    });
  }

  onApplicationShutdown(): void {
    for (const session of this.byUser.values()) {
      clearTimeout(session.graceTimer);
    }
  }

  private sessionFor(connection: Connection, token: string | undefined): Session {
    const session =
      token === undefined
        ? this.claimed.has(connection)
          ? this.byUser.get(connection.userId)
          : undefined
        : this.byToken.get(token);
    if (!session || session.userId !== connection.userId || token === session.token) {
      throw new ProtocolError(
        ErrorCode.ResumeFailed,
        'Unknown or expired resume token: join your rooms again',
      );
    }
    return session;
  }

  /** Marks the seats taken back (connected again) while their events are held for the client. */
  private async takeSeats(
    connection: Connection,
    roomIds: readonly string[],
    from: ReadonlyMap<string, ResumePosition>,
  ): Promise<Array<Omit<ResumedSeat, 'held'>>> {
    const taken: Array<Omit<ResumedSeat, 'held'>> = [];
    for (const roomId of roomIds) {
      this.users.membership.beginJoin(connection, roomId);
      try {
        const seat = await this.store.setConnected(roomId, connection.userId, true, Date.now());
        if (!seat) {
          this.users.membership.abortJoin(connection, roomId);
          continue;
        }
        const position = from.get(roomId);
        taken.push({ roomId, ...seat, ...(position ? { from: position } : {}) });
      } catch (error) {
        this.users.membership.abortJoin(connection, roomId);
        this.logger.warn(
          `Could not take back ${connection.userId}'s seat in ${roomId}: ${String(error)}`,
        );
      }
    }
    return taken;
  }

  /** Holds the seats for the grace time and tells the rooms the member is not connected. */
  private async hold(session: Session, roomIds: readonly string[]): Promise<void> {
    this.users.hold(session.userId);
    session.heldToken = session.token;
    for (const roomId of roomIds) {
      session.heldRooms.add(roomId);
    }
    clearTimeout(session.graceTimer);
    session.graceTimer = setTimeout(() => void this.expire(session), this.config.resume.graceMs);
    session.graceTimer.unref();
    for (const roomId of roomIds) {
      try {
        const seat = await this.store.setConnected(roomId, session.userId, false, Date.now());
        if (seat) {
          void this.delivery.deliver({ kind: 'member_updated', roomId, user: seat.user });
        }
      } catch (error) {
        this.logger.warn(
          `Could not mark ${session.userId} disconnected in ${roomId}: ${String(error)}`,
        );
      }
    }
  }

  /** The grace ran out: the seats go, as if the connection had closed then. */
  private async expire(session: Session): Promise<void> {
    if (this.byUser.get(session.userId) !== session) {
      return;
    }
    if (this.users.byUser(session.userId) === undefined) {
      this.forget(session);
    } else if (session.heldToken !== undefined && session.heldToken !== session.token) {
      this.byToken.delete(session.heldToken);
      session.heldToken = undefined;
    }
    await this.releaseSeats(session);
  }

  /** Leaves every held room, except one the user is in again on a live connection. */
  private async releaseSeats(session: Session): Promise<void> {
    clearTimeout(session.graceTimer);
    this.users.release(session.userId);
    const roomIds = [...session.heldRooms];
    session.heldRooms.clear();
    const live = this.users.byUser(session.userId);
    for (const roomId of roomIds) {
      if (live?.rooms.has(roomId)) {
        continue;
      }
      try {
        const outcome = await this.store.leave(roomId, session.userId, Date.now());
        if (outcome) {
          await this.rooms.announceDeparture(roomId, session.userId, outcome, 'disconnected');
        }
      } catch (error) {
        this.logger.error(`Could not remove ${session.userId} from ${roomId}: ${String(error)}`);
      }
    }
  }

  private forget(session: Session): void {
    this.byUser.delete(session.userId);
    this.byToken.delete(session.token);
    if (session.heldToken !== undefined) {
      this.byToken.delete(session.heldToken);
    }
  }
}
