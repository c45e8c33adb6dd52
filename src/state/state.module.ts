import { Module } from '@nestjs/common';
import { StateService } from './state.service.js';

/** Versioned room state. The store and the delivery come by token (ROOM_STORE, ROOM_CHANGE_DELIVERY). */
@Module({
  providers: [StateService],
  exports: [StateService],
})
export class StateModule {}
