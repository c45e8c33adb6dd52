import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module.js';
import { Fanout } from './fanout.service.js';
import { LocalDelivery } from './local-delivery.js';
import { PoseBatches } from './pose-batches.js';

/**
 * Delivery to this instance's sockets. The RoomBus itself (ROOM_BUS) comes with the deployment:
 * LocalRoomBus from StandaloneModule, RedisRoomBus from ClusterModule.
 */
@Module({
  imports: [UsersModule],
  providers: [Fanout, PoseBatches, LocalDelivery],
  exports: [Fanout, LocalDelivery],
})
export class BusModule {}
