import { Inject, Injectable } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { RoomEvents } from '../extensions/room-events.service.js';
import { ClientAction, MIN_ROLE, type RoomState } from '../protocol/protocol.js';
import { ROOM_CHANGE_DELIVERY, type RoomChangeDelivery } from '../rooms/room-changes.js';
import { ROOM_STORE, type RoomStore, type StateChange } from '../rooms/room-store.js';
import type { Connection } from '../users/connection.js';

/** Versioned room state: compare-and-set through the store, then the delivery and the listeners. */
@Injectable()
export class StateService {
  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    @Inject(ROOM_CHANGE_DELIVERY) private readonly delivery: RoomChangeDelivery,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly events: RoomEvents,
  ) {}

  /** Applies the change; the sender's copy of `state_updated` is its reply. */
  async update(
    actor: Connection,
    roomId: string,
    change: StateChange,
    requestId?: string,
  ): Promise<void> {
    // The store checks the role again as it commits: the guard's check may be stale by then.
    const version = await this.store.applyStateChange(roomId, change, this.config.maxStateBytes, {
      userId: actor.userId,
      minRole: MIN_ROLE[ClientAction.UpdateState],
      requestId,
    });
    const committed = {
      roomId,
      version,
      ...(change.patch ? { patch: change.patch } : {}),
      ...(change.ops ? { ops: change.ops } : {}),
    };
    const delivered = this.delivery.deliver({
      kind: 'state_committed',
      ...committed,
      origin: { connection: actor, requestId },
    });
    // Emitted at once, not after a cluster's echo: listeners see commits in the order they happened.
    this.events.emit('state.committed', { ...committed, updatedBy: actor.userId });
    // Resolves once delivered, so the sender's next request is not answered before this one.
    await delivered;
  }

  get(roomId: string): Promise<RoomState> {
    return this.store.getState(roomId);
  }
}
