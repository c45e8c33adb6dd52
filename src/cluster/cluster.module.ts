import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { ROOM_BUS } from '../bus/room-bus.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ROOM_STORE } from '../rooms/room-store.js';
import { RoomsModule } from '../rooms/rooms.module.js';
import { UsersModule } from '../users/users.module.js';
import { CLUSTER_COORDINATOR } from './cluster-coordinator.js';
import { CLUSTER, historyCapOf, type Cluster } from './cluster.js';
import { CommitReplies } from './commit-replies.js';
import { InstancePresenceService } from './instance-presence.service.js';
import { connectCluster } from './redis-connection.js';
import { RedisRecoveryService } from './redis-recovery.service.js';
import { RedisRoomBus } from './redis-room-bus.js';
import { RedisRoomStore } from './redis-room-store.js';
import { RedisRoomHistory } from './redis-room-history.js';
import { RedisHeldSessions } from './redis-held-sessions.js';
import { HELD_SESSIONS } from '../resume/held-sessions.js';
import { ResumeModule } from '../resume/resume.module.js';
import { ROOM_HISTORY } from '../history/room-history.js';
import { SessionTakeoverService } from './session-takeover.service.js';
import { STORE_PROBE } from '../telemetry/store-probe.js';
import { RedisProbe } from './redis-probe.js';

/**
 * Scale-out (REDIS_URL set): rooms, memberships and state in Redis, events through each room's
 * Redis channel, and what keeps memberships right across instances (presence and ghost removal,
 * session takeover, registering live members again after a Redis outage). It provides the same
 * tokens as StandaloneModule; AppModule.forRoot imports one or the other, so nothing here runs
 * in single-instance mode and nothing outside this folder knows Redis.
 */
@Global()
@Module({
  imports: [BusModule, UsersModule, RoomsModule, ResumeModule],
  providers: [
    {
      provide: CLUSTER,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig): Promise<Cluster> => connectCluster(config),
    },
    CommitReplies,
    {
      provide: RedisRoomStore,
      inject: [CLUSTER, CommitReplies, appConfig.KEY],
      useFactory: (cluster: Cluster, commitReplies: CommitReplies, config: AppConfig) =>
        new RedisRoomStore(cluster.publisher, {
          keyPrefix: cluster.keyPrefix,
          instanceId: cluster.instanceId,
          commitReplies,
          historyCap: historyCapOf(config),
        }),
    },
    { provide: ROOM_STORE, useExisting: RedisRoomStore },
    RedisRoomBus,
    { provide: ROOM_BUS, useExisting: RedisRoomBus },
    InstancePresenceService,
    { provide: CLUSTER_COORDINATOR, useExisting: InstancePresenceService },
    SessionTakeoverService,
    RedisRecoveryService,
    RedisRoomHistory,
    { provide: ROOM_HISTORY, useExisting: RedisRoomHistory },
    { provide: HELD_SESSIONS, useClass: RedisHeldSessions },
    { provide: STORE_PROBE, useClass: RedisProbe },
  ],
  exports: [ROOM_STORE, ROOM_BUS, CLUSTER_COORDINATOR, ROOM_HISTORY, HELD_SESSIONS, STORE_PROBE],
})
export class ClusterModule implements OnApplicationShutdown {
  constructor(@Inject(CLUSTER) private readonly cluster: Cluster) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.cluster.publisher.quit(), this.cluster.subscriber.quit()]);
  }
}
