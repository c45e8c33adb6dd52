import { Module } from '@nestjs/common';
import { CLUSTER, type Cluster } from '../cluster/cluster.js';
import { RedisRoomBus } from '../cluster/redis-room-bus.js';
import { UsersModule } from '../users/users.module.js';
import { UsersService } from '../users/users.service.js';
import { Fanout } from './fanout.service.js';
import { LocalDelivery } from './local-delivery.js';
import { LocalRoomBus } from './local-room-bus.js';
import { ROOM_BUS, type RoomBus } from './room-bus.js';

@Module({
  imports: [UsersModule],
  providers: [
    Fanout,
    LocalDelivery,
    {
      // One instance: straight to the sockets. REDIS_URL: also through each room's channel.
      provide: ROOM_BUS,
      inject: [LocalDelivery, Fanout, UsersService, CLUSTER],
      useFactory: (
        local: LocalDelivery,
        fanout: Fanout,
        users: UsersService,
        cluster: Cluster | null,
      ): RoomBus =>
        cluster ? new RedisRoomBus(local, fanout, users, cluster) : new LocalRoomBus(local),
    },
  ],
  exports: [Fanout, LocalDelivery, ROOM_BUS],
})
export class BusModule {}
