import WebSocket from 'ws';
import type { ServerEvent, ServerEventMap } from '../../src/protocol/protocol.js';

export interface Received<E extends ServerEvent = ServerEvent> {
  event: E;
  data: ServerEventMap[E];
}

export interface ConnectOptions {
  userId?: string;
  apiKey?: string;
  headers?: Record<string, string>;
  /** false: do not answer ws pings (a dead client, for heartbeat tests). */
  autoPong?: boolean;
  /** A `resumeToken` from an earlier `connected`: `?resume=` on the upgrade. */
  resume?: string;
  /** Subprotocols to offer, e.g. `['gallery.v2']` for the binary pose channel. */
  protocols?: string[];
}

const DEFAULT_TIMEOUT_MS = 2000;

/**
 * A protocol client for tests: `await alice.join('gallery-1')`, `alice.broadcast(pose)`,
 * `await bob.next('message')`. Every frame received is kept in order; `next` consumes them.
 */
export class TestClient {
  readonly received: Received[] = [];
  /** Binary frames received (the binary pose channel), in order; not consumed by `next`. */
  readonly binaryFrames: Buffer[] = [];
  private readonly waiters: Array<() => void> = [];
  private requestCounter = 0;
  userId = '';
  /** The `connected` event this client got. */
  connected?: ServerEventMap['connected'];
  closeCode?: number;
  closeReason?: string;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (raw, isBinary) => {
      if (isBinary) {
        this.binaryFrames.push(raw as Buffer);
      } else {
        this.received.push(JSON.parse((raw as Buffer).toString()) as Received);
      }
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve({ code, reason: this.closeReason });
      });
    });
    socket.on('error', () => undefined);
  }

  /** Opens a socket and waits for `connected`. */
  static async connect(baseUrl: string, options: ConnectOptions = {}): Promise<TestClient> {
    const url = new URL(baseUrl);
    if (options.userId !== undefined) {
      url.searchParams.set('userId', options.userId);
    }
    if (options.apiKey !== undefined) {
      url.searchParams.set('apiKey', options.apiKey);
    }
    if (options.resume !== undefined) {
      url.searchParams.set('resume', options.resume);
    }
    const socket = new WebSocket(url, options.protocols ?? [], {
      headers: options.headers,
      autoPong: options.autoPong ?? true,
    });
    const client = new TestClient(socket);
    const connected = await client.next('connected');
    client.userId = connected.userId;
    client.connected = connected;
    return client;
  }

  /** Attempts an upgrade that should be refused; resolves with the HTTP status. */
  static async refusedStatus(baseUrl: string, options: ConnectOptions = {}): Promise<number> {
    const url = new URL(baseUrl);
    for (const [key, value] of Object.entries({ userId: options.userId, apiKey: options.apiKey })) {
      if (value !== undefined) {
        url.searchParams.set(key, value);
      }
    }
    const socket = new WebSocket(url, { headers: options.headers });
    return new Promise((resolve, reject) => {
      socket.on('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        socket.terminate();
      });
      socket.on('open', () => {
        socket.close();
        reject(new Error('the upgrade was accepted'));
      });
      socket.on('error', () => undefined);
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  sendRaw(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.socket.send(data, { binary: options.binary ?? false });
  }

  nextRequestId(): string {
    this.requestCounter += 1;
    return `${this.userId}-req-${this.requestCounter}`;
  }

  /** Sends an action with a fresh requestId and returns that id. */
  request(action: string, fields: Record<string, unknown> = {}): string {
    const requestId = this.nextRequestId();
    this.send({ action, requestId, ...fields });
    return requestId;
  }

  /** Consumes received events up to and including the next `event`; fails after `timeoutMs`. */
  async next<E extends ServerEvent>(
    event: E,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<ServerEventMap[E]> {
    const found = await this.nextMatching(
      (message): message is Received<E> => message.event === event,
      `event "${event}"`,
      timeoutMs,
    );
    return found.data;
  }

  /** The next event of any kind, in arrival order. */
  async nextAny(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Received> {
    return this.nextMatching((_message): _message is Received => true, 'any event', timeoutMs);
  }

  /** Waits for the reply (success or error) that carries `requestId`. */
  async reply(requestId: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Received> {
    return this.nextMatching(
      (message): message is Received =>
        (message.data as { requestId?: string }).requestId === requestId,
      `reply to ${requestId}`,
      timeoutMs,
    );
  }

  /** Waits for the `error` reply to `requestId`. */
  async error(requestId: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerEventMap['error']> {
    const message = await this.reply(requestId, timeoutMs);
    if (message.event !== 'error') {
      throw new Error(`expected an error for ${requestId}, got ${JSON.stringify(message)}`);
    }
    return message.data as ServerEventMap['error'];
  }

  /** Asserts that no `event` (or no event at all) arrives within `ms`. */
  async expectNothing(ms = 150, event?: ServerEvent): Promise<void> {
    await delay(ms);
    const unexpected = this.received.filter((message) => !event || message.event === event);
    if (unexpected.length > 0) {
      throw new Error(`unexpected events: ${JSON.stringify(unexpected)}`);
    }
  }

  async join(
    roomId: string,
    fields: Record<string, unknown> = {},
  ): Promise<ServerEventMap['room_joined']['roomInfo']> {
    const requestId = this.request('join_room', { roomId, ...fields });
    const message = await this.reply(requestId);
    if (message.event !== 'room_joined') {
      throw new Error(`join ${roomId} failed: ${JSON.stringify(message)}`);
    }
    return (message.data as ServerEventMap['room_joined']).roomInfo;
  }

  broadcast(roomId: string, message: Record<string, unknown>): void {
    this.send({ action: 'broadcast', roomId, message });
  }

  async waitForClose(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, timeoutMs, 'socket close');
  }

  close(): void {
    this.socket.close();
  }

  private async nextMatching<T extends Received>(
    matches: (message: Received) => message is T,
    what: string,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex(matches);
      if (index !== -1) {
        const [found] = this.received.splice(0, index + 1).slice(-1);
        return found as T;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.userId}: timed out waiting for ${what}; received ${JSON.stringify(this.received)}` +
            (this.closeCode !== undefined ? `; socket closed ${this.closeCode}` : ''),
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) {
      waiter();
    }
  }
}

/** Drops a client's connection without a close frame, as a lost network does. */
export async function drop(client: TestClient): Promise<void> {
  client.socket.terminate();
  await client.waitForClose();
}

/** Waits until `count` events arrived, then takes every event received so far, in order. */
export async function takeReceived(
  client: TestClient,
  count: number,
  what: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<Received[]> {
  await withTimeout(
    (async () => {
      while (client.received.length < count) {
        await delay(10);
      }
    })(),
    timeoutMs,
    `${what} (got ${JSON.stringify(client.received)})`,
  );
  return client.received.splice(0);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function until(
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await delay(20);
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
