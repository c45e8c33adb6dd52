import { Module, type DynamicModule } from '@nestjs/common';
import { AUDIT_LOG_OPTIONS, type AuditLogOptions } from './audit-log.options.js';
import { AuditLogWriter } from './audit-log.writer.js';
import { RaiseHandGateway } from './raise-hand.gateway.js';
import { RoomAuditListener } from './room-audit.listener.js';
import { SeatAndSceneHooks } from './seat-and-scene.hooks.js';

/**
 * The worked example of docs/extending.md: an audit log of room events, a `raise_hand` action
 * and two veto hooks. Wired with one line: `AppModule.forRoot({ imports:
 * [AuditLogModule.forRoot({ file: '/var/log/gallery/audit.jsonl' })] })`.
 *
 * It imports nothing: the extension points (RoomEvents, RoomHooks, RoomMessenger) and what an
 * action gateway needs (Senders, the role guard, the error filter) are global.
 */
@Module({})
export class AuditLogModule {
  static forRoot(options: AuditLogOptions): DynamicModule {
    return {
      module: AuditLogModule,
      providers: [
        { provide: AUDIT_LOG_OPTIONS, useValue: options },
        AuditLogWriter,
        RoomAuditListener,
        SeatAndSceneHooks,
        RaiseHandGateway,
      ],
    };
  }
}
