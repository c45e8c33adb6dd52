import { Module } from '@nestjs/common';
import { RoomsModule } from '../rooms/rooms.module.js';
import { UsersModule } from '../users/users.module.js';
import { ResumeService } from './resume.service.js';

/** Seats held after a dropped connection, and the `resume` that takes them back. */
@Module({
  imports: [RoomsModule, UsersModule],
  providers: [ResumeService],
  exports: [ResumeService],
})
export class ResumeModule {}
