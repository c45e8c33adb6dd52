import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { RoomsService } from '../rooms/rooms.service.js';
import { UsersService } from '../users/users.service.js';
import type {
  ClusterCoordinator,
  ClusterDependency,
  ClusterTotals,
  InstanceSummary,
} from './cluster-coordinator.js';
import { CLUSTER, type Cluster } from './cluster.js';
import { RedisKeys } from './redis-keys.js';
import { RedisRecoveryService } from './redis-recovery.service.js';
import { RedisRoomStore } from './redis-room-store.js';

/** What an instance reports about itself in its presence key, for cluster-wide /stats. */
interface InstanceReport {
  connections: number;
  droppedMessages: number;
  /** Absent in the reports of older versions. */
  startedAt?: number;
  redisRecoveries?: number;
  lastRedisRecoveryAt?: number;
}

/**
 * Keeps this instance's presence in Redis and removes the members of instances that died.
 *
 * Each instance refreshes `P instance:<id>:alive` (expiring after half of PRESENCE_TTL_MS) and is
 * listed in `P instances`. Every instance sweeps that list; the first to remove a dead instance
 * from it (SREM answers 1 to one caller) removes its members from their rooms and tells the rooms,
 * so ghosts are gone within PRESENCE_TTL_MS. On shutdown an instance removes its own at once.
 *
 * The beat has a timer of its own, so a slow sweep never delays it. An instance taken for dead
 * anyway (its process stalled past its alive key) finds out at its next beat: Redis lists other
 * memberships for it than its live sockets hold, or no longer lists it. It then registers the
 * missing ones again (RedisRecoveryService), and their rooms are told they joined. The same
 * comparison, made at least once per PRESENCE_TTL_MS, catches what commands that timed out did
 * when Redis carried them out later: members no socket here holds, sockets kicked unawares.
 */
@Injectable()
export class InstancePresenceService
  implements ClusterCoordinator, OnApplicationBootstrap, BeforeApplicationShutdown
{
  private readonly logger = new Logger(InstancePresenceService.name);
  private beatTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  /** Each of these runs one at a time: a slow one is not stacked upon. */
  private beating = false;
  private sweeping = false;
  private reconciling = false;
  /** Beats since the last that looked for differences between Redis and the live sockets. */
  private beatsUnreconciled = 0;
  /** Beats that found this instance swept, and how many of them a reconciliation took in. */
  private sweptBeats = 0;
  private sweptBeatsReconciled = 0;
  /** Set by the first beat that got through: Redis did not list the instance before it. */
  private listed = false;
  /** Set while refreshing fails, so an outage is logged once, not every tick. */
  private failing = false;
  /**
   * No sweeping before this time: after an outage every instance first needs a chance to refresh
   * its presence, or survivors would take each other's live members for ghosts.
   */
  private sweepNotBefore = 0;
  private readonly keys: RedisKeys;
  private readonly startedAt = Date.now();

  /** Readiness needs Redis: without it this instance cannot admit anyone to a room. */
  readonly dependencies: readonly ClusterDependency[] = [
    { name: 'redis', ping: async () => void (await this.cluster.publisher.ping()) },
  ];

  constructor(
    @Inject(CLUSTER) private readonly cluster: Cluster,
    private readonly store: RedisRoomStore,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly rooms: RoomsService,
    private readonly users: UsersService,
    private readonly fanout: Fanout,
    private readonly recovery: RedisRecoveryService,
  ) {
    this.keys = new RedisKeys(cluster.keyPrefix);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.beat().catch((error: unknown) => this.warn('register', error));
    const interval = this.config.presenceTtlMs / 6;
    this.beatTimer = setInterval(() => void this.renew(), interval);
    this.beatTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweepIfDue(), interval);
    this.sweepTimer.unref();
  }

  /** After ShutdownService has closed the sockets: whoever is still here leaves now. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.beatTimer);
    clearInterval(this.sweepTimer);
    for (const connection of [...this.users.all()]) {
      this.users.disconnect(connection.handle);
      await this.rooms.leaveAll(connection).catch((error: unknown) => this.warn('leave', error));
    }
    await this.removeMembersOf(this.cluster.instanceId).catch((error: unknown) =>
      this.warn('leave', error),
    );
    const { publisher, instanceId } = this.cluster;
    await publisher
      .multi()
      .del(this.aliveKey(instanceId))
      .srem(this.instancesKey(), instanceId)
      .exec()
      .catch((error: unknown) => this.warn('unregister', error));
  }

  /** Connections and drops summed over the live instances. */
  async clusterTotals(): Promise<ClusterTotals> {
    const { publisher } = this.cluster;
    const ids = await publisher.smembers(this.instancesKey());
    const reports = ids.length > 0 ? await publisher.mget(ids.map((id) => this.aliveKey(id))) : [];
    const totals: ClusterTotals = {
      instances: 0,
      instanceList: [],
      connections: 0,
      droppedMessages: 0,
      redisRecoveries: 0,
    };
    reports.forEach((report, index) => {
      if (report === null) {
        return;
      }
      const parsed = JSON.parse(report) as InstanceReport;
      totals.instances += 1;
      totals.instanceList.push(instanceSummary(ids[index], parsed));
      totals.connections += parsed.connections;
      totals.droppedMessages += parsed.droppedMessages;
      totals.redisRecoveries += parsed.redisRecoveries ?? 0;
      if ((parsed.lastRedisRecoveryAt ?? 0) > (totals.lastRedisRecoveryAt ?? 0)) {
        totals.lastRedisRecoveryAt = parsed.lastRedisRecoveryAt;
      }
    });
    totals.instanceList.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    return totals;
  }

  private async renew(): Promise<void> {
    if (this.beating) {
      return;
    }
    this.beating = true;
    try {
      const swept = await this.beat();
      if (this.failing) {
        this.failing = false;
        this.sweepNotBefore = Date.now() + this.config.presenceTtlMs / 2;
        this.logger.log('Presence refreshed again');
      }
      if (swept) {
        void this.reconcile();
      }
    } catch (error) {
      if (!this.failing) {
        this.failing = true;
        this.warn('refresh', error);
      }
    } finally {
      this.beating = false;
    }
  }

  /**
   * Renews this instance's presence. True when Redis and the live sockets are to be compared:
   * Redis did not list it, or lists another number of memberships for it than its live sockets
   * hold (another instance removed them, a join or kick that timed out was carried out), or it
   * has not been done for RECONCILE_EVERY_BEATS beats (the two may differ by as many each way).
   */
  private async beat(): Promise<boolean> {
    const { publisher, instanceId } = this.cluster;
    const recovered = this.recovery.recovered;
    const report: InstanceReport = {
      connections: this.users.count(),
      droppedMessages: this.fanout.droppedMessages(),
      startedAt: this.startedAt,
      redisRecoveries: recovered.count,
      ...(recovered.at ? { lastRedisRecoveryAt: recovered.at } : {}),
    };
    const replies = await publisher
      .multi()
      .set(
        this.aliveKey(instanceId),
        JSON.stringify(report),
        'PX',
        Math.ceil(this.config.presenceTtlMs / 2),
      )
      .sadd(this.instancesKey(), instanceId)
      .scard(this.keys.instanceMembers(instanceId))
      .exec();
    const added = replies?.[1]?.[1];
    const onRecord = Number(replies?.[2]?.[1]);
    if (added === 1 && this.listed) {
      this.sweptBeats++;
    }
    this.listed = true;
    this.beatsUnreconciled++;
    if (
      added === 1 ||
      onRecord !== this.liveMemberships() ||
      this.beatsUnreconciled >= RECONCILE_EVERY_BEATS
    ) {
      this.beatsUnreconciled = 0;
      return true;
    }
    return false;
  }

  /** Memberships of this instance's sockets (joins still pending not counted). */
  private liveMemberships(): number {
    let count = 0;
    for (const connection of this.users.all()) {
      count += connection.rooms.size;
    }
    return count;
  }

  /** Runs beside the beats: a slow one must not hold the presence up. */
  private async reconcile(): Promise<void> {
    if (this.reconciling) {
      return;
    }
    this.reconciling = true;
    const sweptBeats = this.sweptBeats;
    try {
      if (await this.recovery.reconcile(sweptBeats > this.sweptBeatsReconciled)) {
        this.sweptBeatsReconciled = sweptBeats;
      }
    } catch (error) {
      this.warn('reconcile members', error);
    } finally {
      this.reconciling = false;
    }
  }

  private async sweepIfDue(): Promise<void> {
    if (this.sweeping || this.failing || Date.now() < this.sweepNotBefore) {
      return;
    }
    this.sweeping = true;
    try {
      await this.sweep();
    } catch (error) {
      this.warn('sweep', error);
    } finally {
      this.sweeping = false;
    }
  }

  private async sweep(): Promise<void> {
    const { publisher, instanceId } = this.cluster;
    for (const id of await publisher.smembers(this.instancesKey())) {
      if (id === instanceId || (await publisher.exists(this.aliveKey(id))) === 1) {
        continue;
      }
      // Exactly one survivor wins this and cleans up.
      if ((await publisher.srem(this.instancesKey(), id)) === 1) {
        await this.membersLost(id);
      }
    }
    await this.removeHeldMembersDue();
  }

  /**
   * With resume on, a dead instance's members keep their seats for the grace, as after a drop
   * (their clients may resume anywhere with their tokens); the removal is scheduled. Else they
   * are removed now.
   */
  private async membersLost(deadId: string): Promise<void> {
    const { graceMs } = this.config.resume;
    if (graceMs === 0) {
      this.logger.warn(`Instance ${deadId} stopped answering: removing its members`);
      await this.removeMembersOf(deadId);
      return;
    }
    this.logger.warn(
      `Instance ${deadId} stopped answering: its members keep their seats for ${graceMs} ms`,
    );
    await this.cluster.publisher.zadd(this.heldInstancesKey(), Date.now() + graceMs, deadId);
    const now = Date.now();
    for (const { roomId, userId } of await this.store.membersOf(deadId)) {
      const seat = await this.store.markConnected(roomId, userId, false, now, deadId);
      if (seat?.changed) {
        this.rooms.announceConnection(roomId, seat.user);
      }
    }
  }

  /**
   * Dead instances whose grace is over: their members that nobody resumed (a resume moves the
   * seat to its instance) leave. One that came back meanwhile (a stall) keeps them.
   */
  private async removeHeldMembersDue(): Promise<void> {
    const { publisher } = this.cluster;
    const due = await publisher.zrangebyscore(this.heldInstancesKey(), '-inf', Date.now());
    for (const id of due) {
      if ((await publisher.zrem(this.heldInstancesKey(), id)) !== 1) {
        continue; // Another survivor took it.
      }
      if ((await publisher.exists(this.aliveKey(id))) === 1) {
        continue;
      }
      this.logger.warn(`The grace of instance ${id}'s members is over: removing them`);
      await this.removeMembersOf(id);
    }
  }

  private async removeMembersOf(instanceId: string): Promise<void> {
    for (const { roomId, userId } of await this.store.membersOf(instanceId)) {
      const outcome = await this.store.removeGhost(roomId, userId, instanceId, Date.now());
      if (outcome) {
        await this.rooms.announceDeparture(roomId, userId, outcome, 'gone');
      }
    }
  }

  private aliveKey(instanceId: string): string {
    return `${this.cluster.keyPrefix}instance:${instanceId}:alive`;
  }

  private instancesKey(): string {
    return `${this.cluster.keyPrefix}instances`;
  }

  /** Dead instances whose members' seats are held, scored by the end of their grace. */
  private heldInstancesKey(): string {
    return `${this.cluster.keyPrefix}instances:held`;
  }

  private warn(what: string, error: unknown): void {
    this.logger.warn(`Presence (${what}) failed: ${String(error)}`);
  }
}

/** At most this many beats apart, Redis and the live sockets are compared (see beat). */
const RECONCILE_EVERY_BEATS = 6;

function instanceSummary(instanceId: string, report: InstanceReport): InstanceSummary {
  return {
    instanceId,
    connections: report.connections,
    droppedMessages: report.droppedMessages,
    ...(report.startedAt ? { startedAt: report.startedAt } : {}),
  };
}
