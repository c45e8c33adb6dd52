import { Injectable, type OnModuleInit } from '@nestjs/common';
import { RoomEvents, type RoomEventMap } from '../../src/extension-api.js';
import { AuditLogWriter } from './audit-log.writer.js';

/** Writes every room lifecycle event to the audit log. */
@Injectable()
export class RoomAuditListener implements OnModuleInit {
  constructor(
    private readonly events: RoomEvents,
    private readonly writer: AuditLogWriter,
  ) {}

  onModuleInit(): void {
    this.events.on('room.created', (event) => this.writer.append('room.created', event));
    this.events.on('member.joined', (event) => this.writer.append('member.joined', event));
    this.events.on('member.left', (event) => this.writer.append('member.left', event));
    this.events.on('member.role_changed', (event) =>
      this.writer.append('member.role_changed', event),
    );
    this.events.on('state.committed', (event) =>
      this.writer.append('state.committed', summaryOf(event)),
    );
    this.events.on('room.deleted', (event) => this.writer.append('room.deleted', event));
  }
}

/**
 * What a state change did, not what it holds: a patch can carry up to MAX_STATE_BYTES of
 * scene tree and settings on every commit, and annotations hold what people typed, which an
 * audit file kept for months should not. Who, when, which sections and which kinds of edit is
 * what an audit needs.
 */
function summaryOf(event: RoomEventMap['state.committed']): object {
  return {
    roomId: event.roomId,
    version: event.version,
    updatedBy: event.updatedBy,
    ...(event.patch ? { patchKeys: Object.keys(event.patch) } : {}),
    ...(event.ops ? { ops: event.ops.map(({ op, collection }) => ({ op, collection })) } : {}),
  };
}
