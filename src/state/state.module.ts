import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { RoomsModule } from '../rooms/rooms.module.js';
import { StateService } from './state.service.js';

@Module({
  imports: [BusModule, RoomsModule],
  providers: [StateService],
  exports: [StateService],
})
export class StateModule {}
