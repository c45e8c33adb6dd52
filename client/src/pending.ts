import type { ServerEvent, ServerEventMap, ServerMessage } from '../../src/protocol/protocol.js';
import { ClientErrorCode, GalleryError } from './errors.js';
import type { Clock } from './socket.js';

interface Pending {
  expect: ServerEvent;
  resolve(data: unknown): void;
  reject(error: GalleryError): void;
  timer: unknown;
}

/** Requests waiting for their one reply (by `requestId`, or an `error`), a timeout or a close. */
export class PendingRequests {
  private readonly pending = new Map<string, Pending>();
  private counter = 0;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  nextId(): string {
    this.counter += 1;
    return `c${this.counter}`;
  }

  wait<E extends ServerEvent>(requestId: string, expect: E): Promise<ServerEventMap[E]> {
    return new Promise<ServerEventMap[E]>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(requestId);
        reject(
          new GalleryError(ClientErrorCode.Timeout, `No ${expect} within ${this.timeoutMs} ms`, {
            requestId,
          }),
        );
      }, this.timeoutMs);
      this.pending.set(requestId, {
        expect,
        resolve: resolve,
        reject,
        timer,
      });
    });
  }

  /** Settles the request this message answers; false when it answers none. */
  settle(message: ServerMessage): boolean {
    const requestId = (message.data as { requestId?: unknown }).requestId;
    const entry = typeof requestId === 'string' ? this.pending.get(requestId) : undefined;
    if (!entry || (message.event !== 'error' && message.event !== entry.expect)) {
      return false;
    }
    this.pending.delete(requestId as string);
    this.clock.clearTimeout(entry.timer);
    if (message.event === 'error') {
      entry.reject(GalleryError.fromPayload(message.data));
    } else {
      entry.resolve(message.data);
    }
    return true;
  }

  /** A closed connection: no reply will come on it. */
  rejectAll(reason: string): void {
    const entries = [...this.pending];
    this.pending.clear();
    for (const [requestId, entry] of entries) {
      this.clock.clearTimeout(entry.timer);
      entry.reject(new GalleryError(ClientErrorCode.ConnectionClosed, reason, { requestId }));
    }
  }
}
