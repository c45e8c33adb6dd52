import { Module } from '@nestjs/common';
import { HeartbeatService } from './heartbeat.service.js';
import { UsersService } from './users.service.js';

@Module({
  providers: [UsersService, HeartbeatService],
  exports: [UsersService],
})
export class UsersModule {}
