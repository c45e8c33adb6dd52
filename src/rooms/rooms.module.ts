import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { CLUSTER, type Cluster } from '../cluster/cluster.js';
import { RedisRoomStore } from '../cluster/redis-room-store.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { UsersModule } from '../users/users.module.js';
import { FileRoomPersistence } from './file-room-persistence.js';
import { MemoryRoomStore } from './memory-room-store.js';
import { RelayService } from './relay.service.js';
import { RoomExpiryService } from './room-expiry.service.js';
import { ROOM_PERSISTENCE, type RoomPersistence } from './room-persistence.js';
import { ROOM_STORE, type RoomStore } from './room-store.js';
import { RoomsService } from './rooms.service.js';
import { SlowClientService } from './slow-client.service.js';

@Module({
  imports: [BusModule, UsersModule],
  providers: [
    RoomsService,
    RelayService,
    RoomExpiryService,
    SlowClientService,
    {
      // One instance: rooms in memory (persistent ones also on disk). REDIS_URL: shared in Redis.
      provide: ROOM_STORE,
      inject: [CLUSTER, ROOM_PERSISTENCE],
      useFactory: (cluster: Cluster | null, persistence: RoomPersistence): RoomStore =>
        cluster
          ? new RedisRoomStore(cluster.publisher, {
              keyPrefix: cluster.keyPrefix,
              instanceId: cluster.instanceId,
            })
          : new MemoryRoomStore(persistence),
    },
    {
      // DATA_DIR is checked (and created) while the app is created, before anything listens.
      provide: ROOM_PERSISTENCE,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig) => FileRoomPersistence.open(config.dataDir),
    },
  ],
  exports: [RoomsService, RelayService, ROOM_STORE],
})
export class RoomsModule {}
