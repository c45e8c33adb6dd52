import { Global, Module } from '@nestjs/common';
import { RoomEvents } from './room-events.service.js';
import { RoomHooks } from './room-hooks.service.js';
import { RoomMessenger } from './room-messenger.service.js';

/**
 * The extension points, available to every module: room lifecycle events (RoomEvents), veto and
 * enrich hooks (RoomHooks) and sending your own events to rooms (RoomMessenger). Custom actions
 * are gateways of your own; see docs/extending.md.
 */
@Global()
@Module({
  providers: [RoomEvents, RoomHooks, RoomMessenger],
  exports: [RoomEvents, RoomHooks, RoomMessenger],
})
export class ExtensionsModule {}
