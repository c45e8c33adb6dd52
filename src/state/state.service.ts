import { Inject, Injectable } from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import { deliverCommittedWithReply } from '../bus/reply.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { RoomEvents } from '../extensions/room-events.service.js';
import { RoomHooks } from '../extensions/room-hooks.service.js';
import { ServerEvent, type RoomState } from '../protocol/protocol.js';
import { ROOM_STORE, type RoomStore, type StateChange } from '../rooms/room-store.js';
import type { Connection } from '../users/connection.js';

/** Versioned room state: compare-and-set through the store, then `state_updated` to everyone. */
@Injectable()
export class StateService {
  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly fanout: Fanout,
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
    const data = {
      roomId,
      version,
      ...(change.patch ? { patch: change.patch } : {}),
      ...(change.ops ? { ops: change.ops } : {}),
      updatedBy: actor.userId,
    };
    const message = { event: ServerEvent.StateUpdated, data };
    await deliverCommittedWithReply(this.bus, this.fanout, actor, roomId, message, requestId);
    this.events.emit('state.committed', data);
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
