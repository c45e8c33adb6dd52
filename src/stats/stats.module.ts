import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { BusModule } from '../bus/bus.module.js';
import { RoomsModule } from '../rooms/rooms.module.js';
import { UsersModule } from '../users/users.module.js';
import { StatsController } from './stats.controller.js';

@Module({
  imports: [AuthModule, BusModule, RoomsModule, UsersModule],
  controllers: [StatsController],
})
export class StatsModule {}
