import { Global, Module } from '@nestjs/common';
import { RoomEvents } from './room-events.service.js';
import { RoomHooks } from './room-hooks.service.js';

/**
 * The extension points, available to every module: room lifecycle events (RoomEvents) and veto
 * and enrich hooks (RoomHooks). Sending your own events to rooms is RoomMessenger (DeliveryModule);
 * custom actions are gateways of your own. See docs/extending.md.
 */
@Global()
@Module({
  providers: [RoomEvents, RoomHooks],
  exports: [RoomEvents, RoomHooks],
})
export class ExtensionsModule {}
