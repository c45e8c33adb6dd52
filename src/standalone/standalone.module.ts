import { Global, Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { HELD_SESSIONS } from '../resume/held-sessions.js';
import { MemoryHeldSessions } from '../resume/memory-held-sessions.js';
import { LocalRoomBus } from '../bus/local-room-bus.js';
import { ROOM_BUS } from '../bus/room-bus.js';
import { CLUSTER_COORDINATOR } from '../cluster/cluster-coordinator.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { FileRoomPersistence } from './file-room-persistence.js';
import { MemoryRoomStore } from './memory-room-store.js';
import { ROOM_PERSISTENCE } from './room-persistence.js';
import { ROOM_STORE } from '../rooms/room-store.js';
import { SingleInstanceCoordinator } from './single-instance-coordinator.js';

/**
 * The default deployment, one instance (REDIS_URL unset): rooms in memory (persistent ones also
 * on disk under DATA_DIR), events straight to this process's sockets. ClusterModule provides the
 * same tokens with Redis behind them; AppModule.forRoot imports one or the other.
 */
@Global()
@Module({
  imports: [BusModule],
  providers: [
    {
      // DATA_DIR is checked (and created) while the app is created, before anything listens.
      provide: ROOM_PERSISTENCE,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig) => FileRoomPersistence.open(config.dataDir),
    },
    MemoryRoomStore,
    { provide: ROOM_STORE, useExisting: MemoryRoomStore },
    LocalRoomBus,
    { provide: ROOM_BUS, useExisting: LocalRoomBus },
    { provide: CLUSTER_COORDINATOR, useClass: SingleInstanceCoordinator },
    { provide: HELD_SESSIONS, useClass: MemoryHeldSessions },
  ],
  exports: [ROOM_STORE, ROOM_BUS, CLUSTER_COORDINATOR, HELD_SESSIONS],
})
export class StandaloneModule {}
