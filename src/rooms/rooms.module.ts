import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { UsersModule } from '../users/users.module.js';
import { PoseTicker } from './pose-ticker.js';
import { RelayService } from './relay.service.js';
import { RoomExpiryService } from './room-expiry.service.js';
import { RoomsService } from './rooms.service.js';
import { SlowClientService } from './slow-client.service.js';

/**
 * Room lifecycle, membership, roles and relaying. The store and the bus are injected by token
 * (ROOM_STORE, ROOM_BUS): StandaloneModule or ClusterModule provides them.
 */
@Module({
  imports: [BusModule, UsersModule],
  providers: [RoomsService, RelayService, PoseTicker, RoomExpiryService, SlowClientService],
  exports: [RoomsService, RelayService, PoseTicker],
})
export class RoomsModule {}
