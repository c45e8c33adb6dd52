import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { roleCapOf } from '../auth/identity.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ROOM_HISTORY, type HistoryEntry, type RoomHistory } from '../history/room-history.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { ErrorCode, type ResumePosition } from '../protocol/protocol.js';
import {
  ROOM_CHANGE_DELIVERY,
  type ResumedSeat,
  type RoomChangeDelivery,
} from '../rooms/room-changes.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { RoomsService } from '../rooms/rooms.service.js';
import type { Connection } from '../users/connection.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import { UsersService } from '../users/users.service.js';
import { HELD_SESSIONS, type HeldSession, type HeldSessions } from './held-sessions.js';

/** What a `?resume=` on an upgrade came to: the token, and whose seats it may take back. */
export interface UpgradeResume {
  readonly token: string;
  /** Undefined: no held session (any more) for that token and the upgrade's identity. */
  readonly userId?: string;
}

/**
 * A held session outlives the grace this long in HELD_SESSIONS, so that the instance holding the
 * seats claims it when the grace ends, before it could expire unclaimed.
 */
const CLAIM_MARGIN_MS = 60_000;

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
  private readonly claimed = new WeakMap<Connection, string>();
  /** Upgrades with a `?resume=`, resolved before the socket opens (prepareUpgrade). */
  private readonly upgrades = new WeakMap<IncomingMessage, UpgradeResume>();

  constructor(
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    private readonly users: UsersService,
    private readonly rooms: RoomsService,
    @Inject(ROOM_CHANGE_DELIVERY) private readonly delivery: RoomChangeDelivery,
    @Inject(ROOM_HISTORY) private readonly history: RoomHistory,
    @Inject(HELD_SESSIONS) private readonly sessions: HeldSessions,
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    @Optional() private readonly counters: ServerCounters = new ServerCounters(),
  ) {}

  get enabled(): boolean {
    return this.config.resume.graceMs > 0;
  }

  /**
   * Resolves an upgrade's `?resume=` token before its socket opens: whose seats it may take back,
   * from this instance's sessions or the held ones (on any instance, in a cluster). A token that
   * names someone other than the upgrade's own identity counts as none.
   */
  async prepareUpgrade(
    request: IncomingMessage,
    identityUserId: string | undefined,
  ): Promise<void> {
    const token = resumeTokenOf(request);
    if (token === undefined || !this.enabled) {
      return;
    }
    const userId =
      this.byToken.get(token)?.userId ??
      (await this.sessions.userOf(token).catch((error: unknown) => {
        this.logger.warn(`Could not look up a resume token: ${String(error)}`);
        return undefined;
      }));
    const mayTake =
      userId !== undefined && (identityUserId === undefined || identityUserId === userId);
    this.upgrades.set(request, { token, ...(mayTake ? { userId } : {}) });
  }

  /** What prepareUpgrade found for this upgrade; undefined when it had no `?resume=`. */
  upgradeResume(request: IncomingMessage): UpgradeResume | undefined {
    return this.upgrades.get(request);
  }

  /** The connection came with a valid `?resume=` token: its `resume` may omit it. */
  markClaimed(connection: Connection, token: string): void {
    this.claimed.set(connection, token);
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
      this.void(session.token);
    }
    session.token = randomBytes(24).toString('base64url');
    this.byToken.set(session.token, session);
    this.sessions.register(session.token, userId).catch((error: unknown) => {
      this.logger.warn(`Could not register ${userId}'s session: ${String(error)}`);
    });
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
    // Nobody may take these seats back any more.
    this.void(session.token);
    if (session.heldToken !== undefined && session.heldToken !== session.token) {
      this.void(session.heldToken);
    }
    await this.releaseSeats(session);
  }

  /**
   * Takes the held seats back for `connection`: one `resumed` reply, then per room the missed
   * events or a snapshot (see RoomDelivery); a listed room whose seat is gone is joined again.
   * RESUME_FAILED for another user's token. The seats may have been held on another instance:
   * HELD_SESSIONS says which, and who won.
   */
  async resume(
    connection: Connection,
    token: string | undefined,
    positions: readonly ResumePosition[],
    requestId?: string,
  ): Promise<void> {
    const held = await this.claimHeld(connection, token ?? this.claimed.get(connection)).catch(
      (error: unknown) => {
        this.counters.resumes[0]++;
        throw error;
      },
    );
    this.claimed.delete(connection);
    const local = this.byUser.get(connection.userId);
    if (held && local && local.heldToken !== undefined) {
      // Held here: the grace timer stops, and the seats are this claim's.
      clearTimeout(local.graceTimer);
      this.users.release(local.userId);
      if (local.heldToken !== local.token) {
        this.byToken.delete(local.heldToken);
      }
      local.heldToken = undefined;
      local.heldRooms.clear();
    }
    const from = new Map(positions.map((position) => [position.roomId, position]));
    // Registered while open, its instance died with it: its seats are wherever it still is.
    const heldRoomIds = held ? (held.roomIds ?? (await this.store.roomsOf(connection.userId))) : [];
    const taken = await this.takeSeats(connection, heldRoomIds, from);
    const seatless = positions.filter(
      ({ roomId }) =>
        !connection.rooms.has(roomId) && !taken.some((seat) => seat.roomId === roomId),
    );
    taken.push(...(await this.rejoin(connection, seatless)));
    if (!this.users.isCurrent(connection)) {
      // Dropped again while the seats were taken back: they stay held for the next try.
      for (const { roomId } of taken) {
        this.users.membership.abortJoin(connection, roomId);
      }
      await this.hold(
        this.sessionOf(connection.userId),
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
      .filter((roomId) => !connection.rooms.has(roomId));
    // recovered="true": held seats were taken back; "false": none were held (joined anew).
    this.counters.resumes[held ? 1 : 0]++;
    void this.delivery.deliver({
      kind: 'member_resumed',
      origin: { connection, requestId },
      seats,
      lost,
    });
    for (const seat of seats) {
      if (seat.joined) {
        this.rooms.noteJoinedByResume(seat.roomId, seat.user);
      }
    }
  }

  onApplicationShutdown(): void {
    for (const session of this.byUser.values()) {
      clearTimeout(session.graceTimer);
    }
  }

  /**
   * The held session of `token`, taken for `connection`'s user; undefined when the token holds
   * nothing (unknown, expired, used, or none given): its rooms are joined again instead.
   * RESUME_FAILED for another user's token.
   */
  private async claimHeld(
    connection: Connection,
    token: string | undefined,
  ): Promise<HeldSession | undefined> {
    if (token === undefined || token === this.byUser.get(connection.userId)?.token) {
      return undefined;
    }
    // Checked before the claim: a wrong user's attempt must not end the owner's session.
    const owner = this.byToken.get(token)?.userId ?? (await this.sessions.userOf(token));
    if (owner !== undefined && owner !== connection.userId) {
      throw new ProtocolError(ErrorCode.ResumeFailed, 'This resume token is not yours');
    }
    const held = owner === undefined ? undefined : await this.sessions.claim(token);
    return held?.userId === connection.userId ? held : undefined;
  }

  /**
   * Rooms the client had whose seats are gone (the grace ran out, a restart): joined again as a
   * `join_room` would (never created), each answered with a snapshot; the others go under `lost`.
   */
  private async rejoin(
    connection: Connection,
    positions: readonly ResumePosition[],
  ): Promise<Array<Omit<ResumedSeat, 'held'>>> {
    const rejoined: Array<Omit<ResumedSeat, 'held'>> = [];
    for (const position of positions) {
      const { roomId } = position;
      const outcome = await this.rooms.rejoinForResume(
        connection,
        roomId,
        roleCapOf(connection.identity, roomId),
      );
      if (outcome) {
        const { roomInfo, user, alreadyMember } = outcome;
        rejoined.push({ roomId, roomInfo, user, from: position, joined: !alreadyMember });
      }
    }
    return rejoined;
  }

  private sessionOf(userId: string): Session {
    let session = this.byUser.get(userId);
    if (!session) {
      session = { userId, token: '', heldRooms: new Set() };
      this.byUser.set(userId, session);
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
        // This instance may have no other member of the room yet: it must hear the room's events.
        await this.bus.watch(roomId);
        const seat = await this.store.setConnected(roomId, connection.userId, true, Date.now());
        if (!seat) {
          this.users.membership.abortJoin(connection, roomId);
          continue;
        }
        const position = from.get(roomId);
        // Read while the seat is still pending: whatever comes meanwhile is held, not lost.
        const missed = await this.missedSince(roomId, connection.userId, position);
        taken.push({
          roomId,
          ...seat,
          ...(position ? { from: position } : {}),
          ...(missed ? { missed } : {}),
        });
      } catch (error) {
        this.users.membership.abortJoin(connection, roomId);
        this.logger.warn(
          `Could not take back ${connection.userId}'s seat in ${roomId}: ${String(error)}`,
        );
      }
    }
    return taken;
  }

  /** The events of the room after the client's position, if the history still has them all. */
  private async missedSince(
    roomId: string,
    userId: string,
    from: ResumePosition | undefined,
  ): Promise<readonly HistoryEntry[] | undefined> {
    if (from?.epoch === undefined || from.lastSeq === undefined) {
      return undefined;
    }
    return this.history.since(roomId, from.epoch, from.lastSeq, userId);
  }

  /** Holds the seats for the grace time and tells the rooms the member is not connected. */
  private async hold(session: Session, roomIds: readonly string[]): Promise<void> {
    this.users.hold(session.userId);
    session.heldToken = session.token;
    for (const roomId of roomIds) {
      session.heldRooms.add(roomId);
    }
    clearTimeout(session.graceTimer);
    const { graceMs } = this.config.resume;
    session.graceTimer = setTimeout(() => void this.expire(session), graceMs);
    session.graceTimer.unref();
    try {
      await this.sessions.hold(
        session.heldToken,
        { userId: session.userId, roomIds: [...session.heldRooms] },
        graceMs + CLAIM_MARGIN_MS,
      );
    } catch (error) {
      // Still held here for the grace; only a resume on another instance cannot find it.
      this.logger.warn(`Could not share ${session.userId}'s held seats: ${String(error)}`);
    }
    for (const roomId of roomIds) {
      try {
        const seat = await this.store.setConnected(roomId, session.userId, false, Date.now());
        if (seat) {
          void this.delivery.deliver({ kind: 'member_updated', roomId, user: seat.user });
          await this.keepLiveSeat(session.userId, roomId);
        }
      } catch (error) {
        this.logger.warn(
          `Could not mark ${session.userId} disconnected in ${roomId}: ${String(error)}`,
        );
      }
    }
  }

  /**
   * A new connection of the user here joined the room while its dropped one was being held: a
   * join that reached the store before the mark above found the seat connected and left it so,
   * and must not stay marked not connected. (A join that comes after the mark reconnects it.)
   */
  private async keepLiveSeat(userId: string, roomId: string): Promise<void> {
    const live = this.users.byUser(userId);
    const joined =
      live !== undefined &&
      (live.rooms.has(roomId) || this.users.membership.pending(roomId)?.has(live) === true);
    if (!joined) {
      return;
    }
    const seat = await this.store.setConnected(roomId, userId, true, Date.now());
    if (seat?.changed) {
      void this.delivery.deliver({ kind: 'member_updated', roomId, user: seat.user });
    }
  }

  /**
   * The grace ran out: the seats go, as if the connection had closed then, unless a resume on
   * another instance claimed them first (it owns them now).
   */
  private async expire(session: Session): Promise<void> {
    if (this.byUser.get(session.userId) !== session || session.heldToken === undefined) {
      return;
    }
    const heldToken = session.heldToken;
    const claimed = await this.sessions.claim(heldToken).catch((error: unknown) => {
      this.logger.warn(`Could not claim ${session.userId}'s held seats: ${String(error)}`);
      return { userId: session.userId, roomIds: [] };
    });
    if (this.users.byUser(session.userId) === undefined) {
      this.forget(session);
    } else if (heldToken !== session.token) {
      this.byToken.delete(heldToken);
      session.heldToken = undefined;
    }
    if (!claimed) {
      clearTimeout(session.graceTimer);
      this.users.release(session.userId);
      session.heldRooms.clear();
      return;
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

  /** The token resumes nothing any more (anywhere, in a cluster). */
  private void(token: string): void {
    if (token === '') {
      return;
    }
    this.sessions.claim(token).catch((error: unknown) => {
      this.logger.warn(`Could not void a resume token: ${String(error)}`);
    });
  }

  private forget(session: Session): void {
    this.byUser.delete(session.userId);
    this.byToken.delete(session.token);
    if (session.heldToken !== undefined) {
      this.byToken.delete(session.heldToken);
    }
  }
}

/** The `?resume=` token of an upgrade, if any (at most one, a sane length). */
function resumeTokenOf(request: IncomingMessage): string | undefined {
  const query = request.url?.split('?')[1];
  if (query === undefined) {
    return undefined;
  }
  const token = new URLSearchParams(query).get('resume');
  return token !== null && /^[A-Za-z0-9_-]{1,128}$/.test(token) ? token : undefined;
}
