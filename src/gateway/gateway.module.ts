import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { RoomsModule } from '../rooms/rooms.module.js';
import { StateModule } from '../state/state.module.js';
import { UsersModule } from '../users/users.module.js';
import { MultiplayerGateway } from './multiplayer.gateway.js';

@Module({
  imports: [BusModule, RoomsModule, StateModule, UsersModule],
  providers: [MultiplayerGateway],
})
export class GatewayModule {}
