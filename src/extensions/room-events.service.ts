import { Injectable, Logger } from '@nestjs/common';
import type { RoomEventListener, RoomEventMap, RoomEventName } from './room-events.js';

/**
 * Room lifecycle events for extension modules: `on('member.joined', listener)` in a provider's
 * `onModuleInit`. Listeners run after the commit and after the members were told, each in its
 * own microtask: a slow or failing listener never delays or breaks a request, and an error is
 * logged with the event's name, nothing more. Events reach listeners in the order they happened.
 *
 * A typed registry rather than @nestjs/event-emitter: the payloads are checked by the compiler
 * per event name, and the veto hooks (RoomHooks) need awaited, ordered calls that an emitter
 * does not give.
 */
@Injectable()
export class RoomEvents {
  private readonly logger = new Logger(RoomEvents.name);
  private readonly listeners = new Map<RoomEventName, Array<RoomEventListener<RoomEventName>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends RoomEventName>(name: K, listener: RoomEventListener<K>): () => void {
    const list = this.listeners.get(name) ?? [];
    list.push(listener as RoomEventListener<RoomEventName>);
    this.listeners.set(name, list);
    return () => {
      const index = list.indexOf(listener as RoomEventListener<RoomEventName>);
      if (index >= 0) {
        list.splice(index, 1);
      }
    };
  }

  /** Called by the room and state services after a commit. Never throws. */
  emit<K extends RoomEventName>(name: K, event: RoomEventMap[K]): void {
    const list = this.listeners.get(name);
    if (!list || list.length === 0) {
      return;
    }
    for (const listener of [...list]) {
      queueMicrotask(() => this.run(name, listener, event));
    }
  }

  private run<K extends RoomEventName>(
    name: K,
    listener: RoomEventListener<RoomEventName>,
    event: RoomEventMap[K],
  ): void {
    try {
      const result = listener(event);
      if (result instanceof Promise) {
        result.catch((error: unknown) => this.failed(name, error));
      }
    } catch (error) {
      this.failed(name, error);
    }
  }

  private failed(name: string, error: unknown): void {
    this.logger.error(`A ${name} listener failed: ${String(error)}`);
  }
}
