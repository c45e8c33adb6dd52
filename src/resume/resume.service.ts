import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
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
import { RoomsService, type JoinAdmission } from '../rooms/rooms.service.js';
import { SlowClientService } from '../rooms/slow-client.service.js';
import type { Connection } from '../users/connection.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import { UsersService } from '../users/users.service.js';
import { HeldSeats } from './held-seats.js';
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
  /**
   * The token of the connection that dropped last, while seats are held: it takes back every held
   * seat, and the token of an earlier drop stops working when a later one replaces it.
   */
  heldToken?: string;
  /** The seats held for it, each until its own grace ends. */
  readonly seats: HeldSeats;
  /** Set for the first grace to end among the seats. */
  graceTimer?: NodeJS.Timeout;
  /**
   * Resumes of its connections here still under way. A connection that drops during one leaves
   * the session to it rather than ending it: the resume holds again what it took back, under
   * the session's token (the dropped connection's, the newest its client has).
   */
  resumes: number;
}

/** A held session taken by a `resume`, and the token it was held under. */
interface Claim {
  readonly token: string;
  readonly session: HeldSession;
}

/**
 * Seats held after a dropped connection, and taking them back (docs/resume.md). A connection that
 * drops without a close frame (or whose heartbeat died) keeps its rooms for RECONNECT_GRACE_MS,
 * shown to the others as `connected: false`; a `resume` with its token within that time takes
 * them back, with what it missed. When the time is up it leaves, as a closed connection does.
 */
@Injectable()
export class ResumeService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ResumeService.name);
  private readonly byUser = new Map<string, Session>();
  /** Every token that works: each session's current one, and its held one while seats are held. */
  private readonly byToken = new Map<string, Session>();
  /** Connections that came with a valid `?resume=` token: their `resume` needs none. */
  private readonly claimed = new WeakMap<Connection, string>();
  /** Upgrades with a `?resume=`, resolved before the socket opens (prepareUpgrade). */
  private readonly upgrades = new WeakMap<IncomingMessage, UpgradeResume>();
  /**
   * Rooms a new connection took over from the user's socket that was still open (a plain
   * reconnect): its client was never sent them, so its `resume` gives them back like held seats.
   */
  private readonly inherited = new WeakMap<Connection, ReadonlySet<string>>();

  constructor(
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    private readonly users: UsersService,
    private readonly rooms: RoomsService,
    @Inject(ROOM_CHANGE_DELIVERY) private readonly delivery: RoomChangeDelivery,
    @Inject(ROOM_HISTORY) private readonly history: RoomHistory,
    @Inject(HELD_SESSIONS) private readonly sessions: HeldSessions,
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    private readonly moduleRef: ModuleRef,
    @Optional() private readonly counters: ServerCounters = new ServerCounters(),
  ) {
    this.users.onConnect((connection) => {
      if (this.enabled && connection.rooms.size > 0) {
        this.inherited.set(connection, new Set(connection.rooms));
      }
    });
  }

  onModuleInit(): void {
    // Looked up, not injected: RoomsModule does not export it, and cannot import this module back.
    // An evicted client (1013) was closed by the server: a leave, which ends its session.
    this.moduleRef
      .get(SlowClientService, { strict: false })
      .onEvicted((connection) => this.end(connection.userId));
  }

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
      session = this.newSession(userId);
      this.byUser.set(userId, session);
    } else if (session.token !== session.heldToken) {
      this.dropToken(session.token);
    }
    session.token = randomBytes(24).toString('base64url');
    this.byToken.set(session.token, session);
    this.sessions.register(session.token, userId).catch((error: unknown) => {
      this.logger.warn(`Could not register ${userId}'s session: ${String(error)}`);
    });
    return session.token;
  }

  /**
   * The user's socket here was replaced by a connection on another instance without a resume:
   * its token stops working everywhere, as a plain reconnect here retires it (issueToken). The
   * new connection has a token of its own there. Seats held here from an earlier drop stay held
   * under their own token, until it is used or their grace ends.
   */
  replacedElsewhere(userId: string): void {
    const session = this.byUser.get(userId);
    if (!session) {
      return;
    }
    if (session.heldToken === undefined) {
      // Nothing held here either: no connection of the user is left here, nor is its session.
      this.forget(session);
      return;
    }
    if (session.token !== session.heldToken) {
      this.dropToken(session.token);
    }
    session.token = '';
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
    if (roomIds.length === 0 && session.seats.size === 0) {
      // Nothing held, unless a resume under way has seats to hold again (it ends the session if
      // not, see resume).
      if (session.resumes === 0) {
        this.forget(session);
      }
      return;
    }
    for (const roomId of roomIds) {
      this.users.membership.remove(connection, roomId);
    }
    await this.hold(session, roomIds);
  }

  /** The user's connection closed for good (its close frame, the server's close): a leave. */
  async end(userId: string): Promise<void> {
    const session = this.byUser.get(userId);
    // A newer connection of the user opened while the closed one was leaving its rooms: the
    // session is that one's now (the closed one's token stopped working when it connected).
    if (!session || this.users.byUser(userId) !== undefined) {
      return;
    }
    // Nobody may take these seats back any more.
    this.forget(session);
    await this.leaveSeats(userId, session.seats.clear());
  }

  /**
   * Takes the held seats back for `connection`: one `resumed` reply, then per room the missed
   * events or a snapshot (see RoomDelivery); a listed room whose seat is gone is joined again.
   * Rooms the connection took over from the user's socket that was still open come back the same
   * way. What would take it past MAX_ROOMS_PER_CONNECTION is `lost` (a held seat then leaves).
   * A room joined again passes `admission` first, the checks of a `join_room` (else it is
   * `lost`); a held seat is the same membership going on, and does not.
   * RESUME_FAILED for another user's token. The seats may have been held on another instance:
   * HELD_SESSIONS says which, and who won. A connection that ends before the reply: see
   * settleEnded.
   */
  async resume(
    connection: Connection,
    token: string | undefined,
    positions: readonly ResumePosition[],
    admission: JoinAdmission,
    requestId?: string,
  ): Promise<void> {
    const session = this.byUser.get(connection.userId);
    if (session) {
      session.resumes++;
    }
    try {
      await this.takeBack(connection, session, token, positions, admission, requestId);
    } finally {
      if (session) {
        session.resumes--;
        // Dropped meanwhile, with nothing held again: the session ends, as detach would end it.
        if (
          session.resumes === 0 &&
          session.heldToken === undefined &&
          this.byUser.get(connection.userId) === session
        ) {
          this.forgetIfGone(session);
        }
      }
    }
  }

  /** The work of `resume`, for `connection` of `session` (its user's session here when it began). */
  private async takeBack(
    connection: Connection,
    session: Session | undefined,
    token: string | undefined,
    positions: readonly ResumePosition[],
    admission: JoinAdmission,
    requestId?: string,
  ): Promise<void> {
    const claim = await this.claimHeld(connection, token ?? this.claimed.get(connection)).catch(
      (error: unknown) => {
        this.counters.resumes[0]++;
        throw error;
      },
    );
    this.claimed.delete(connection);
    const local = this.byUser.get(connection.userId);
    if (claim && local?.heldToken === claim.token) {
      // Held here: the grace timers stop, and the seats are this claim's.
      this.stopHolding(local);
    }
    // One entry per room, whatever the request repeats.
    const from = new Map(positions.map((position) => [position.roomId, position]));
    // Registered while open, its instance died with it: its seats are wherever it still is.
    const heldRoomIds = claim
      ? (claim.session.roomIds ?? (await this.store.roomsOf(connection.userId)))
      : [];
    const { inherited, take, surplus } = this.fitSeats(connection, heldRoomIds, from);
    for (const roomId of inherited) {
      // Taken back like a held seat (takeSeats, at once): what the room sends meanwhile is held
      // for the reply, which comes before it rather than after.
      this.users.membership.remove(connection, roomId);
    }
    const taken = await this.takeSeats(connection, take, from);
    const isTaken = (roomId: string) => taken.some((seat) => seat.roomId === roomId);
    const seatless = [...from.values()].filter(
      ({ roomId }) =>
        !connection.rooms.has(roomId) && !surplus.includes(roomId) && !isTaken(roomId),
    );
    taken.push(...(await this.rejoin(connection, seatless, taken, admission)));
    // Claimed, so nobody else lets them go: they leave now rather than stay held for nobody.
    await this.leaveHeldSeats(connection.userId, surplus);
    // No longer a local member of these, its seat must not stay on record with nobody behind it.
    const dangling = inherited.filter(
      (roomId) => !connection.rooms.has(roomId) && !isTaken(roomId),
    );
    await this.leaveSeats(connection.userId, dangling);
    if (!this.users.isCurrent(connection)) {
      await this.settleEnded(connection, session, taken);
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
    const lost = new Set([...from.keys(), ...surplus, ...dangling]);
    for (const roomId of connection.rooms) {
      lost.delete(roomId);
    }
    // recovered="true": held seats were taken back; "false": none were held (joined anew).
    this.counters.resumes[claim || take.length > 0 ? 1 : 0]++;
    void this.delivery.deliver({
      kind: 'member_resumed',
      origin: { connection, requestId },
      seats,
      lost: [...lost],
    });
    for (const seat of seats) {
      if (seat.joined) {
        this.rooms.noteJoinedByResume(seat.roomId, seat.user);
      }
    }
  }

  /**
   * The connection ended while its resume took the seats back, before the rooms heard of it. A
   * room it joined anew never heard of it either: that join is taken back quietly, as a
   * `join_room` whose connection closed is. The held seats it took back are held again after a
   * drop (or a replacement here), under the session's token, for the grace; after a close
   * (end), which ended the session, or when the session ended otherwise, they leave now.
   */
  private async settleEnded(
    connection: Connection,
    session: Session | undefined,
    taken: ReadonlyArray<Omit<ResumedSeat, 'held'>>,
  ): Promise<void> {
    const seats: string[] = [];
    for (const { roomId, joined } of taken) {
      this.users.membership.abortJoin(connection, roomId);
      if (joined) {
        await this.rooms.undoJoin(roomId, connection.userId, false);
      } else {
        seats.push(roomId);
      }
    }
    if (seats.length === 0) {
      return;
    }
    if (session && this.byUser.get(connection.userId) === session) {
      await this.hold(session, seats);
    } else {
      await this.leaveSeats(connection.userId, seats);
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
  ): Promise<Claim | undefined> {
    if (token === undefined || token === this.byUser.get(connection.userId)?.token) {
      return undefined;
    }
    // Checked before the claim: a wrong user's attempt must not end the owner's session.
    const owner = this.byToken.get(token)?.userId ?? (await this.sessions.userOf(token));
    if (owner !== undefined && owner !== connection.userId) {
      throw new ProtocolError(ErrorCode.ResumeFailed, 'This resume token is not yours');
    }
    const session = owner === undefined ? undefined : await this.sessions.claim(token);
    return session?.userId === connection.userId ? { token, session } : undefined;
  }

  /**
   * Which seats the resume takes back, within MAX_ROOMS_PER_CONNECTION: the rooms the connection
   * took over unseen (already counted among its rooms), then the held seats, those the request
   * lists first. A held seat in a room the connection is in already is not taken again: it joined
   * that room itself (a `join_room` took the seat back) and is up to date, or took it over unseen
   * (given back once, as inherited). `inherited`: the rooms taken over unseen; `surplus`: the
   * held seats that do not fit.
   */
  private fitSeats(
    connection: Connection,
    heldRoomIds: readonly string[],
    from: ReadonlyMap<string, ResumePosition>,
  ): { inherited: string[]; take: string[]; surplus: string[] } {
    const inherited = [...(this.inherited.get(connection) ?? [])].filter((roomId) =>
      connection.rooms.has(roomId),
    );
    this.inherited.delete(connection);
    const places = new Set(connection.rooms);
    const take = [...inherited];
    const surplus: string[] = [];
    const listedFirst = [
      ...heldRoomIds.filter((roomId) => from.has(roomId)),
      ...heldRoomIds.filter((roomId) => !from.has(roomId)),
    ];
    for (const roomId of new Set(listedFirst)) {
      if (places.has(roomId)) {
        continue;
      }
      if (places.size < this.config.maxRoomsPerConnection) {
        places.add(roomId);
        take.push(roomId);
      } else {
        surplus.push(roomId);
      }
    }
    return { inherited, take, surplus };
  }

  /**
   * Rooms the client had whose seats are gone (the grace ran out, a restart): joined again as a
   * `join_room` would, after its checks (`admission`), never created, each answered with a
   * snapshot; the others go under `lost`, as do those past MAX_ROOMS_PER_CONNECTION with the
   * seats taken back (`taken`).
   */
  private async rejoin(
    connection: Connection,
    positions: readonly ResumePosition[],
    taken: ReadonlyArray<Omit<ResumedSeat, 'held'>>,
    admission: JoinAdmission,
  ): Promise<Array<Omit<ResumedSeat, 'held'>>> {
    const places = new Set([...connection.rooms, ...taken.map((seat) => seat.roomId)]);
    const rejoined: Array<Omit<ResumedSeat, 'held'>> = [];
    for (const position of positions) {
      if (places.size >= this.config.maxRoomsPerConnection) {
        break;
      }
      const { roomId } = position;
      const outcome = await this.rooms.rejoinForResume(connection, roomId, admission);
      if (outcome) {
        const { roomInfo, user, alreadyMember } = outcome;
        rejoined.push({ roomId, roomInfo, user, from: position, joined: !alreadyMember });
        places.add(roomId);
      }
    }
    return rejoined;
  }

  private newSession(userId: string): Session {
    return {
      userId,
      token: '',
      seats: new HeldSeats(this.config.maxRoomsPerConnection),
      resumes: 0,
    };
  }

  /** Marks the seats taken back (connected again) while their events are held for the client. */
  private async takeSeats(
    connection: Connection,
    roomIds: readonly string[],
    from: ReadonlyMap<string, ResumePosition>,
  ): Promise<Array<Omit<ResumedSeat, 'held'>>> {
    // Pending from now on: whatever the rooms send meanwhile is held for the reply, not lost.
    for (const roomId of roomIds) {
      this.users.membership.beginJoin(connection, roomId);
    }
    const taken: Array<Omit<ResumedSeat, 'held'>> = [];
    for (const roomId of roomIds) {
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

  /**
   * Holds the seats of `roomIds` for the grace time and tells the rooms the member is not
   * connected. Seats held from earlier drops keep their own grace; the longest-held leave now
   * when there would be more than MAX_ROOMS_PER_CONNECTION.
   */
  private async hold(session: Session, roomIds: readonly string[]): Promise<void> {
    this.users.hold(session.userId);
    // The newest drop's token takes back every held seat; an earlier drop's resumes nothing now.
    if (session.heldToken !== undefined && session.heldToken !== session.token) {
      this.dropToken(session.heldToken);
    }
    session.heldToken = session.token;
    const pushedOut = session.seats.hold(roomIds, Date.now() + this.config.resume.graceMs);
    this.scheduleExpiry(session);
    await this.share(session);
    for (const roomId of roomIds) {
      if (pushedOut.includes(roomId)) {
        continue;
      }
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
    await this.leaveSeats(session.userId, pushedOut);
  }

  /** Records the held seats under the held token, so that a resume on any instance finds them. */
  private async share(session: Session): Promise<void> {
    const lastDeadline = session.seats.lastDeadline();
    if (session.heldToken === undefined || session.heldToken === '' || lastDeadline === undefined) {
      return;
    }
    try {
      await this.sessions.hold(
        session.heldToken,
        { userId: session.userId, roomIds: session.seats.roomIds() },
        lastDeadline - Date.now() + CLAIM_MARGIN_MS,
      );
    } catch (error) {
      // Still held here for the grace; only a resume on another instance cannot find it.
      this.logger.warn(`Could not share ${session.userId}'s held seats: ${String(error)}`);
    }
  }

  /** The timer for the first grace to end among the held seats (none when nothing is held). */
  private scheduleExpiry(session: Session): void {
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
    const next = session.seats.nextDeadline();
    if (next === undefined) {
      return;
    }
    session.graceTimer = setTimeout(
      () => void this.expire(session),
      Math.max(0, next - Date.now()),
    );
    session.graceTimer.unref();
  }

  /**
   * A new connection of the user here joined the room while its dropped one was being held: a
   * join that reached the store before the mark above found the seat connected and left it so,
   * and must not stay marked not connected. (A join that comes after the mark reconnects it.)
   */
  private async keepLiveSeat(userId: string, roomId: string): Promise<void> {
    if (!this.isLiveIn(userId, roomId)) {
      return;
    }
    const seat = await this.store.setConnected(roomId, userId, true, Date.now());
    if (seat?.changed) {
      void this.delivery.deliver({ kind: 'member_updated', roomId, user: seat.user });
    }
  }

  /** Whether a connection of the user here is in the room or joining it. */
  private isLiveIn(userId: string, roomId: string): boolean {
    const live = this.users.byUser(userId);
    return (
      live !== undefined &&
      (live.rooms.has(roomId) || this.users.membership.pending(roomId)?.has(live) === true)
    );
  }

  /**
   * A grace ran out: those seats go, as if the connection had closed then, unless a resume on
   * another instance claimed the session first (it owns them all now). The others stay held,
   * under the same token, until their own grace ends.
   */
  private async expire(session: Session): Promise<void> {
    if (this.byUser.get(session.userId) !== session || session.heldToken === undefined) {
      return;
    }
    if ((session.seats.nextDeadline() ?? 0) > Date.now()) {
      // A timer may fire a little early: claiming now would hide the seats from a resume elsewhere.
      this.scheduleExpiry(session);
      return;
    }
    const heldToken = session.heldToken;
    // Held under no token (the user's socket here was replaced elsewhere): never shared, so no
    // resume can have claimed the seats, and they are this instance's to let go.
    const claimed =
      heldToken === ''
        ? { userId: session.userId }
        : await this.sessions.claim(heldToken).catch((error: unknown) => {
            this.logger.warn(`Could not claim ${session.userId}'s held seats: ${String(error)}`);
            return { userId: session.userId, roomIds: [] };
          });
    if (this.byUser.get(session.userId) !== session || session.heldToken !== heldToken) {
      // Resumed here, ended, or held anew under a newer token meanwhile: that took over.
      return;
    }
    if (!claimed) {
      this.stopHolding(session);
      this.forgetIfGone(session);
      return;
    }
    const due = session.seats.takeDue(Date.now());
    if (session.seats.size === 0) {
      this.stopHolding(session);
      this.forgetIfGone(session);
    } else {
      this.scheduleExpiry(session);
      await this.share(session);
    }
    await this.leaveSeats(session.userId, due);
  }

  /** No seat is held any more: the held token stops working and the timer stops. */
  private stopHolding(session: Session): void {
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
    this.users.release(session.userId);
    if (session.heldToken !== undefined && session.heldToken !== session.token) {
      this.byToken.delete(session.heldToken);
    }
    session.heldToken = undefined;
    session.seats.clear();
  }

  /** With no connection here and nothing held, nothing is left of the session. */
  private forgetIfGone(session: Session): void {
    if (this.users.byUser(session.userId) === undefined) {
      this.forget(session);
    }
  }

  /** Leaves the rooms of held seats, except one the user is in again on a live connection. */
  private leaveSeats(userId: string, roomIds: readonly string[]): Promise<void> {
    const gone = roomIds.filter((roomId) => !this.isLiveIn(userId, roomId));
    return this.rooms.removeDeparted(userId, gone);
  }

  /**
   * Held seats a resume claimed but has no place for. The seat may be on the instance that held
   * it (a cluster): marked connected, it moves here, where it can be left.
   */
  private async leaveHeldSeats(userId: string, roomIds: readonly string[]): Promise<void> {
    const here: string[] = [];
    for (const roomId of roomIds) {
      try {
        if (await this.store.setConnected(roomId, userId, true, Date.now())) {
          here.push(roomId);
        }
      } catch (error) {
        this.logger.error(`Could not remove ${userId} from ${roomId}: ${String(error)}`);
      }
    }
    await this.leaveSeats(userId, here);
  }

  /** The token resumes nothing any more (anywhere, in a cluster). */
  private dropToken(token: string): void {
    this.byToken.delete(token);
    if (token === '') {
      return;
    }
    this.sessions.claim(token).catch((error: unknown) => {
      this.logger.warn(`Could not void a resume token: ${String(error)}`);
    });
  }

  /** The session ends: its tokens stop working (its seats are the caller's to release). */
  private forget(session: Session): void {
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
    this.users.release(session.userId);
    this.byUser.delete(session.userId);
    this.dropToken(session.token);
    if (session.heldToken !== undefined && session.heldToken !== session.token) {
      this.dropToken(session.heldToken);
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
