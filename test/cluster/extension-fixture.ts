// An extension for the cluster tests: custom actions that send events through RoomMessenger, and
// a record of the lifecycle events each instance emits. Not a test file itself.
import { Injectable, Module, type OnModuleInit, type Type } from '@nestjs/common';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import {
  ActionGateway,
  RoomEvents,
  RoomMessenger,
  withRequestId,
  type RoomEventMap,
} from '../../src/extension-api.js';
import { startTestCluster, type TestCluster } from '../support/cluster.js';

/** A lifecycle event as an instance emitted it: which instance (0-based), its name, its payload. */
export interface EmittedEvent {
  instance: number;
  name: 'member.joined' | 'member.left';
  payload: RoomEventMap['member.joined'] | RoomEventMap['member.left'];
}

interface ShareBody {
  requestId?: string;
  roomId: string;
  /** `toMember`'s target; `toRoom` when absent. */
  userId?: string;
  /** Data that JSON cannot carry (a bigint): the extension's bug. */
  unserializable?: boolean;
}

@ActionGateway()
class ShareGateway {
  constructor(private readonly messenger: RoomMessenger) {}

  /** Sends `row_shared` to the room or to one member, then answers `row_sent`. */
  @SubscribeMessage('share_row')
  async share(@MessageBody() body: ShareBody) {
    const data = body.unserializable ? { id: 1n } : { id: 1 };
    if (body.userId === undefined) {
      this.messenger.toRoom(body.roomId, 'row_shared', data);
    } else {
      await this.messenger.toMember(body.roomId, body.userId, 'row_shared', data);
    }
    return { event: 'row_sent', data: withRequestId(body.requestId, {}) };
  }
}

/**
 * Builds one module per instance, so that the record says which instance emitted an event: each
 * instance has its own RoomEvents.
 */
export function extensionFor(instance: number, emitted: EmittedEvent[]): Type<unknown> {
  @Injectable()
  class Recorder implements OnModuleInit {
    constructor(private readonly events: RoomEvents) {}

    onModuleInit() {
      for (const name of ['member.joined', 'member.left'] as const) {
        this.events.on(name, (payload) => void emitted.push({ instance, name, payload }));
      }
    }
  }

  @Module({ providers: [ShareGateway, Recorder] })
  class ClusterTestExtension {}
  return ClusterTestExtension;
}

/**
 * As startTestCluster, but every instance loads the extension above; `emitted` gets the
 * lifecycle events of them all.
 */
export function startClusterWithExtension(
  count: number,
  env: Record<string, string>,
  options: { redisUrl: string; emitted: EmittedEvent[]; keepKeys?: boolean },
): Promise<TestCluster> {
  return startTestCluster(count, env, {
    redisUrl: options.redisUrl,
    keepKeys: options.keepKeys,
    importsOf: (instance) => [extensionFor(instance, options.emitted)],
  });
}
