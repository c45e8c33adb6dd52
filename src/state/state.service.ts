import { Inject, Injectable } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { RoomEvents } from '../extensions/room-events.service.js';
import { RoomHooks } from '../extensions/room-hooks.service.js';
import type { RoomState } from '../protocol/protocol.js';
import { ROOM_CHANGE_DELIVERY, type RoomChangeDelivery } from '../rooms/room-changes.js';
import { ROOM_STORE, type RoomStore, type StateChange } from '../rooms/room-store.js';
import type { Connection } from '../users/connection.js';

/** Versioned room state: hooks, then compare-and-set through the store, then the delivery. */
@Injectable()
export class StateService {
  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    @Inject(ROOM_CHANGE_DELIVERY) private readonly delivery: RoomChangeDelivery,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly events: RoomEvents,
    private readonly hooks: RoomHooks,
  ) {}

  /** Applies the change; the sender's copy of `state_updated` is its reply. */
  async update(
    actor: Connection,
    roomId: string,
    requested: StateChange,
    requestId?: string,
  ): Promise<void> {
    const change = await this.runHooks(actor, roomId, requested);
    const version = await this.store.applyStateChange(roomId, change, this.config.maxStateBytes, {
      actorUserId: actor.userId,
      requestId,
    });
    const committed = {
      roomId,
      version,
      ...(change.patch ? { patch: change.patch } : {}),
      ...(change.ops ? { ops: change.ops } : {}),
    };
    // Resolves once delivered, so the sender's next request is not answered before this one.
    await this.delivery.deliver({
      kind: 'state_committed',
      ...committed,
      origin: { connection: actor, requestId },
    });
    this.events.emit('state.committed', { ...committed, updatedBy: actor.userId });
  }

  /** The beforeStateCommit hooks may veto the change (they throw) or replace its patch or ops. */
  private async runHooks(
    actor: Connection,
    roomId: string,
    change: StateChange,
  ): Promise<StateChange> {
    if (!this.hooks.hasStateHooks) {
      return change;
    }
    const hooked = await this.hooks.runBeforeStateCommit({
      roomId,
      userId: actor.userId,
      identity: actor.identity,
      ...change,
    });
    return { baseVersion: change.baseVersion, patch: hooked.patch, ops: hooked.ops };
  }

  get(roomId: string): Promise<RoomState> {
    return this.store.getState(roomId);
  }
}
