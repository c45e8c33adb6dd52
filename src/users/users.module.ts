import { Module } from '@nestjs/common';
import { HeartbeatService } from './heartbeat.service.js';
import { SessionExpiryService } from './session-expiry.service.js';
import { UsersService } from './users.service.js';

@Module({
  providers: [UsersService, HeartbeatService, SessionExpiryService],
  exports: [UsersService, SessionExpiryService],
})
export class UsersModule {}
