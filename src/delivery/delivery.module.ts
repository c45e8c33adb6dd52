import { Global, Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { ROOM_CHANGE_DELIVERY } from '../rooms/room-changes.js';
import { UsersModule } from '../users/users.module.js';
import { Replies } from './replies.js';
import { RoomDelivery } from './room-delivery.service.js';
import { RoomMessenger } from './room-messenger.service.js';

/**
 * From what happened to frames: room changes to the events each member gets, requests to their
 * replies. Global, so the room and state services get it by token without importing it.
 */
@Global()
@Module({
  imports: [BusModule, UsersModule],
  providers: [
    Replies,
    RoomDelivery,
    { provide: ROOM_CHANGE_DELIVERY, useExisting: RoomDelivery },
    RoomMessenger,
  ],
  exports: [Replies, ROOM_CHANGE_DELIVERY, RoomMessenger],
})
export class DeliveryModule {}
