import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module.js';
import { Fanout } from './fanout.service.js';
import { LocalDelivery } from './local-delivery.js';
import { LocalRoomBus } from './local-room-bus.js';
import { ROOM_BUS } from './room-bus.js';

@Module({
  imports: [UsersModule],
  providers: [Fanout, LocalDelivery, { provide: ROOM_BUS, useClass: LocalRoomBus }],
  exports: [Fanout, LocalDelivery, ROOM_BUS],
})
export class BusModule {}
