import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { RoomsModule } from '../rooms/rooms.module.js';
import { UsersModule } from '../users/users.module.js';
import { InstancePresenceService } from './instance-presence.service.js';
import { RedisRecoveryService } from './redis-recovery.service.js';
import { SessionTakeoverService } from './session-takeover.service.js';

/**
 * Keeps memberships right across instances: presence and ghost removal, session takeover, and
 * registering live members again after a Redis outage. Every service does nothing without
 * REDIS_URL.
 */
@Module({
  imports: [BusModule, RoomsModule, UsersModule],
  providers: [InstancePresenceService, SessionTakeoverService, RedisRecoveryService],
  exports: [InstancePresenceService],
})
export class ClusterMembershipModule {}
