import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module.js';
import { ShutdownService } from './shutdown.service.js';

@Module({
  imports: [UsersModule],
  providers: [ShutdownService],
  exports: [ShutdownService],
})
export class LifecycleModule {}
