import { Global, Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { ResumeModule } from '../resume/resume.module.js';
import { RoomsModule } from '../rooms/rooms.module.js';
import { StateModule } from '../state/state.module.js';
import { UsersModule } from '../users/users.module.js';
import { MultiplayerGateway } from './multiplayer.gateway.js';
import { RequestHooks } from './request-hooks.js';
import { Senders } from './senders.js';

/**
 * The built-in actions. Global, so that a team's own action gateway (@ActionGateway) can use
 * Senders, @RequireRoomRole and the protocol's exception filter without importing our modules.
 */
@Global()
@Module({
  imports: [BusModule, ResumeModule, RoomsModule, StateModule, UsersModule],
  providers: [MultiplayerGateway, Senders, RequestHooks],
  exports: [Senders, BusModule, RoomsModule, UsersModule],
})
export class GatewayModule {}
