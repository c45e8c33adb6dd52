import { roleCapOf } from '../auth/identity.js';
import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, ServerEvent } from '../protocol/protocol.js';
import type { JoinOutcome } from '../rooms/room-store.js';
import { RoomsService } from '../rooms/rooms.service.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { CLUSTER, type Cluster } from './cluster.js';
import { RedisKeys } from './redis-keys.js';
import { RedisRoomBus } from './redis-room-bus.js';
import { RedisRoomStore } from './redis-room-store.js';

/**
 * After a Redis outage, each instance registers the memberships of its live sockets again, so a
 * Redis that came back empty (restarted without persistence) knows every room and member that
 * is still connected, without clients reconnecting. A member still on record is left as it is;
 * one whose socket closed during the outage is removed, and its rooms are told. A member the
 * store had lost is announced (`user_joined`), and once all are registered every member here
 * gets its rooms as the store has them now (`room_joined`): a room Redis lost starts again at
 * version 0, maybe with another host, and members that left meanwhile are not in it.
 *
 * The same for an instance another one took for dead (a stall past its alive key) and removed
 * the members of: those of its live sockets come back, and their rooms get `user_joined`.
 *
 * And the other way round: a command that timed out may still be carried out by Redis later,
 * and nobody is told. A join whose caller gave up leaves a member no socket here holds: it is
 * removed, as a departure. A kick carried out late leaves a live socket the store refuses back:
 * it is told it was kicked, and the room that it left.
 */
@Injectable()
export class RedisRecoveryService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RedisRecoveryService.name);
  private wasDown = false;
  /** Set while registering everything after an outage, which covers swept members too. */
  private recovering = false;
  /** Outages this instance recovered from, and when the last recovery ended: for /stats. */
  private recoveries = 0;
  private lastRecoveredAt?: number;
  private hostCheck?: NodeJS.Timeout;
  /**
   * Members on record for this instance that no socket here holds, by `roomId\nuserId`: since
   * when they look so. Only those that still do after staleAfterMs are removed, so that a socket
   * on its way (a join answered, a session moving to another instance, a seat being held for a
   * resume) is not taken for one.
   */
  private staleSince = new Map<string, number>();
  private readonly staleAfterMs: number;

  constructor(
    @Inject(CLUSTER) private readonly cluster: Cluster,
    private readonly store: RedisRoomStore,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly users: UsersService,
    private readonly rooms: RoomsService,
    private readonly bus: RedisRoomBus,
  ) {
    // Two presence beats (InstancePresenceService beats every PRESENCE_TTL_MS / 6).
    this.staleAfterMs = config.presenceTtlMs / 3;
  }

  /** How many outages this instance recovered from, and when it last did. */
  get recovered(): { count: number; at?: number } {
    return {
      count: this.recoveries,
      ...(this.lastRecoveredAt ? { at: this.lastRecoveredAt } : {}),
    };
  }

  onModuleInit(): void {
    const { publisher } = this.cluster;
    publisher.on('close', () => {
      this.wasDown = true;
      // What the store says is not true again before the live members are registered.
      this.bus.holdResyncs();
    });
    publisher.on('ready', () => {
      if (this.wasDown) {
        this.wasDown = false;
        void this.registerLiveMembers();
      }
    });
  }

  onModuleDestroy(): void {
    clearTimeout(this.hostCheck);
  }

  async registerLiveMembers(): Promise<void> {
    this.recovering = true;
    this.bus.holdResyncs();
    try {
      await this.registerAllAgain();
    } finally {
      this.recovering = false;
      // Every room with members here, once the subscriber listens again (see RedisRoomBus).
      for (const connection of this.users.all()) {
        for (const roomId of connection.rooms) {
          this.bus.resync(roomId);
        }
      }
      this.bus.releaseResyncs();
      this.recoveries++;
      this.lastRecoveredAt = Date.now();
      this.scheduleHostCheck();
    }
  }

  /**
   * A member registered again keeps its role, and is host only if it was: a room Redis lost has
   * no host until its former host registers, from whichever instance it is on. Once every
   * instance had the time to (as long as sweeps wait after an outage), a room still without one,
   * its host gone during the outage, gets one as if the host had just left.
   */
  private scheduleHostCheck(): void {
    clearTimeout(this.hostCheck);
    this.hostCheck = setTimeout(() => void this.ensureHosts(), this.config.presenceTtlMs / 2);
    this.hostCheck.unref();
  }

  private async ensureHosts(): Promise<void> {
    const roomIds = new Set([...this.users.all()].flatMap((connection) => [...connection.rooms]));
    for (const roomId of roomIds) {
      try {
        const host = await this.store.ensureHost(roomId);
        if (host) {
          this.logger.log(`Room ${roomId} had no host after Redis came back: ${host.id} hosts`);
          this.rooms.announceNewHost(roomId, host);
        }
      } catch (error) {
        this.logger.warn(`Could not check the host of ${roomId}: ${String(error)}`);
      }
    }
  }

  private async registerAllAgain(): Promise<void> {
    let registered = 0;
    for (const connection of [...this.users.all()]) {
      for (const roomId of [...connection.rooms]) {
        if (await this.registerLive(connection, roomId)) {
          registered++;
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

  /**
   * Brings what the store has for this instance and its live sockets together, both ways (the
   * presence beat saw them apart, or it is time to look): memberships of live sockets the store
   * lost are registered again (or end, when it refuses them), and members on record that no
   * socket here holds are removed. `takenForDead`: another instance swept this one, so members
   * on record may be marked not connected. False when it did not get to do its part.
   */
  async reconcile(takenForDead: boolean): Promise<boolean> {
    if (this.recovering) {
      // It does both; the next beat looks again once it is done.
      return false;
    }
    const members = await this.store.membersOf(this.cluster.instanceId);
    await this.registerSweptMembers(members, takenForDead);
    await this.removeStale(members);
    return true;
  }

  /**
   * Registers again the memberships of live sockets that another instance removed, taking this
   * one for dead (see InstancePresenceService), and tells their rooms they joined again: the
   * rooms were told they left. Answers how many came back.
   */
  private async registerSweptMembers(
    members: ReadonlyArray<{ roomId: string; userId: string }>,
    takenForDead: boolean,
  ): Promise<number> {
    const onRecord = new Set(
      members.map(({ roomId, userId }) => RedisKeys.instanceMember(roomId, userId)),
    );
    let returned = 0;
    for (const connection of [...this.users.all()]) {
      for (const roomId of [...connection.rooms]) {
        if (onRecord.has(RedisKeys.instanceMember(roomId, connection.userId))) {
          if (takenForDead) {
            // With resume on, the others held it (connected: false) rather than removing it.
            await this.markConnectedAgain(connection, roomId);
          }
          continue;
        }
        if (await this.registerSwept(connection, roomId, takenForDead)) {
          returned++;
        }
      }
    }
    if (returned > 0) {
      this.logger.warn(
        `Taken for dead by another instance: ${returned} membership(s) of live sockets registered again`,
      );
    }
    return returned;
  }

  private async markConnectedAgain(connection: Connection, roomId: string): Promise<void> {
    try {
      const seat = await this.store.setConnected(roomId, connection.userId, true, Date.now());
      if (seat?.changed && this.users.isCurrent(connection) && connection.rooms.has(roomId)) {
        connection.profiles.set(roomId, seat.user);
        this.rooms.announceConnection(roomId, seat.user);
      }
    } catch (error) {
      this.logger.warn(
        `Could not mark ${connection.userId} connected in ${roomId} again: ${String(error)}`,
      );
    }
  }

  /** Registers a membership after an outage; true when it was on record or came back. */
  private async registerLive(connection: Connection, roomId: string): Promise<boolean> {
    return (await this.admitAgain(connection, roomId, false)) !== undefined;
  }

  /**
   * True when the membership came back and its room was told. `takenForDead`: the instance that
   * removed it told the room it left; else its removal was a leave or a kick carried out late.
   */
  private async registerSwept(
    connection: Connection,
    roomId: string,
    takenForDead: boolean,
  ): Promise<boolean> {
    if (!this.users.isCurrent(connection) || !connection.rooms.has(roomId)) {
      return false;
    }
    // On record elsewhere: its session moved to another instance, which owns it now.
    if (await this.isOnRecord(roomId, connection.userId).catch(() => true)) {
      return false;
    }
    return (await this.admitAgain(connection, roomId, takenForDead)) === 'returned';
  }

  /**
   * Registers a live socket's membership again: 'returned' when the store had lost it (its room
   * is told it joined), 'on-record' when it still had it. One that ended meanwhile (its socket
   * closed or it left while the store answered) is taken back, since nobody was told of it. One
   * the store refuses ends here (endRefused); `announced`: its room was told it left.
   */
  private async admitAgain(
    connection: Connection,
    roomId: string,
    announced: boolean,
  ): Promise<'returned' | 'on-record' | undefined> {
    const { userId } = connection;
    if (!this.users.isCurrent(connection) || !connection.rooms.has(roomId)) {
      return undefined;
    }
    const outcome = await this.register(connection, roomId);
    if (outcome instanceof ProtocolError) {
      await this.endRefused(connection, roomId, outcome, announced);
      return undefined;
    }
    if (!outcome) {
      return undefined;
    }
    if (!this.users.isCurrent(connection) || !connection.rooms.has(roomId)) {
      if (!outcome.alreadyMember) {
        await this.store
          .leave(roomId, userId, Date.now())
          .catch((error: unknown) =>
            this.logger.warn(`Could not undo registering ${userId} in ${roomId}: ${String(error)}`),
          );
      }
      return undefined;
    }
    connection.profiles.set(roomId, outcome.user);
    if (outcome.alreadyMember) {
      return 'on-record';
    }
    this.rooms.announceReturn(roomId, outcome.user, announced);
    return 'returned';
  }

  private async isOnRecord(roomId: string, userId: string): Promise<boolean> {
    try {
      return (await this.store.roleOf(roomId, userId)) !== undefined;
    } catch (error) {
      if (error instanceof ProtocolError && error.code === ErrorCode.RoomNotFound) {
        return false;
      }
      throw error;
    }
  }

  /**
   * Registers a live socket's membership again; the refusal when the store refuses it (a ban, a
   * room full by now), undefined (logged) when it fails otherwise. A member still on record stays
   * as it is; one the store lost is admitted again with the cap its token gives it. A room the
   * store lost comes back without a password or an owner.
   */
  private async register(
    connection: Connection,
    roomId: string,
  ): Promise<JoinOutcome | ProtocolError | undefined> {
    const profile = connection.profiles.get(roomId);
    const maxRole = roleCapOf(connection.identity, roomId);
    try {
      return await this.store.join({
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
    } catch (error) {
      if (error instanceof ProtocolError && error.code !== ErrorCode.Unavailable) {
        return error;
      }
      this.logger.warn(
        `Could not register ${connection.userId} in ${roomId} again: ${String(error)}`,
      );
      return undefined;
    }
  }

  /**
   * The store will not have a live socket's membership back, so asking again at every beat is no
   * use: the member is told (`kicked` when it is banned, else `room_left`) and its membership
   * here ends. Unless `announced` (another instance removed it, taking this one for dead), its
   * removal was a kick or a leave carried out after its caller gave up, which nobody announced:
   * the room is told now, and who hosts when it was the host's.
   */
  private async endRefused(
    connection: Connection,
    roomId: string,
    refusal: ProtocolError,
    announced: boolean,
  ): Promise<void> {
    const { userId } = connection;
    if (!this.users.isCurrent(connection) || !connection.rooms.has(roomId)) {
      return;
    }
    const kicked = refusal.code === ErrorCode.Kicked;
    const wasHost = connection.profiles.get(roomId)?.role === 'host';
    this.logger.warn(`${userId} is no longer in ${roomId} (${refusal.code}): telling it`);
    this.bus.endMembershipHere(
      roomId,
      userId,
      kicked
        ? { event: ServerEvent.Kicked, data: { roomId } }
        : { event: ServerEvent.RoomLeft, data: { roomId } },
    );
    if (announced) {
      return;
    }
    try {
      const members = await this.store.members(roomId);
      const newHost = wasHost ? members.find((member) => member.role === 'host') : undefined;
      await this.rooms.announceDeparture(
        roomId,
        userId,
        { remaining: members.length, ...(newHost ? { newHost } : {}) },
        kicked ? 'kicked' : 'left',
      );
    } catch (error) {
      this.logger.warn(`Could not tell ${roomId} that ${userId} left: ${String(error)}`);
    }
  }

  /**
   * Removes the members on record for this instance that no socket here has held for
   * staleAfterMs (a join Redis carried out after its caller gave up on it), as departures: the
   * room is told, and gets a new host when it was the host. Answers how many went.
   */
  private async removeStale(
    members: ReadonlyArray<{ roomId: string; userId: string }>,
  ): Promise<number> {
    const now = Date.now();
    const staleSince = new Map<string, number>();
    const due: Array<{ roomId: string; userId: string; key: string }> = [];
    for (const { roomId, userId } of members) {
      if (this.holdsHere(roomId, userId)) {
        continue;
      }
      const key = RedisKeys.instanceMember(roomId, userId);
      const since = this.staleSince.get(key) ?? now;
      staleSince.set(key, since);
      if (now - since >= this.staleAfterMs) {
        due.push({ roomId, userId, key });
      }
    }
    // Only what looks stale now: one that was held meanwhile starts over.
    this.staleSince = staleSince;
    let removed = 0;
    for (const { roomId, userId, key } of due) {
      this.staleSince.delete(key);
      if (this.holdsHere(roomId, userId)) {
        continue;
      }
      const graceMs = this.config.resume.graceMs;
      const outcome = await this.store.removeStale(roomId, userId, Date.now(), graceMs);
      if (outcome) {
        removed++;
        this.logger.warn(`${userId} was on record in ${roomId} with no socket here: removed`);
        await this.rooms.announceDeparture(roomId, userId, outcome, 'disconnected');
      }
    }
    return removed;
  }

  /** As a join tells a ghost from a member (RoomsService.holdsHere): both must agree. */
  private holdsHere(roomId: string, userId: string): boolean {
    return this.rooms.holdsHere(roomId, userId);
  }

  /**
   * Members on record for this instance whose socket closed while Redis was away; not a seat held
   * for a resume (here, or marked not connected less than the grace ago), which keeps its grace.
   */
  private async removeDeparted(): Promise<number> {
    const { instanceId } = this.cluster;
    let removed = 0;
    for (const { roomId, userId } of await this.store.membersOf(instanceId)) {
      // A seat held for a resume stays, as in removeStale: its grace decides, not the outage.
      if (this.holdsHere(roomId, userId)) {
        continue;
      }
      const graceMs = this.config.resume.graceMs;
      const outcome = await this.store.removeStale(roomId, userId, Date.now(), graceMs);
      if (outcome) {
        removed++;
        await this.rooms.announceDeparture(roomId, userId, outcome, 'disconnected');
      }
    }
    return removed;
  }
}
