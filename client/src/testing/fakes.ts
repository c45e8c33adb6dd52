// Test doubles for the SDK's unit specs: a socket the test speaks for the server through, and a
// clock whose time moves only when the test says so. Not part of the build.
import type {
  RoomInfo,
  RoomUser,
  ServerEvent,
  ServerEventMap,
} from '../../../src/protocol/protocol.js';
import { GalleryClient, type GalleryClientOptions } from '../client.js';
import type { Room } from '../room.js';
import type { Clock, SocketLike } from '../socket.js';

export class FakeClock implements Clock {
  private time = 1_000_000;
  private timers: Array<{ at: number; callback: () => void; id: number }> = [];
  private nextId = 1;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, callback, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward, running every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers
        .filter((timer) => timer.at <= until)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) {
        break;
      }
      this.timers = this.timers.filter((timer) => timer !== due);
      this.time = due.at;
      due.callback();
    }
    this.time = until;
  }
}

export interface SentFrame {
  action: string;
  requestId?: string;
  [key: string]: unknown;
}

export class FakeSocket implements SocketLike {
  static instances: FakeSocket[] = [];
  /** Whether the fake server takes `gallery.v2` when offered (as one with the binary channel). */
  static binaryServer = true;
  readyState = 0;
  readonly protocol: string;
  binaryType = 'blob';
  readonly sent: SentFrame[] = [];
  /** Binary frames sent, in order. */
  readonly binarySent: ArrayBuffer[] = [];
  closedWith?: { code?: number; reason?: string };
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string[],
  ) {
    FakeSocket.instances.push(this);
    const binary = FakeSocket.binaryServer && protocols?.includes('gallery.v2');
    this.protocol = binary
      ? 'gallery.v2'
      : (protocols?.find((p) => !p.startsWith('bearer.')) ?? '');
  }

  static get last(): FakeSocket {
    const socket = FakeSocket.instances.at(-1);
    if (!socket) {
      throw new Error('no socket was opened');
    }
    return socket;
  }

  get query(): URLSearchParams {
    return new URL(this.url).searchParams;
  }

  send(data: string | ArrayBuffer): void {
    if (typeof data === 'string') {
      this.sent.push(JSON.parse(data) as SentFrame);
    } else {
      this.binarySent.push(data);
    }
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** The server sends an event. */
  receive<E extends ServerEvent>(event: E, data: ServerEventMap[E]): void {
    this.readyState = 1;
    this.onmessage?.({ data: JSON.stringify({ event, data }) });
  }

  /** The server sends a binary frame. */
  receiveBinary(data: ArrayBuffer): void {
    this.readyState = 1;
    this.onmessage?.({ data });
  }

  /** The last frame sent with this action. */
  lastSent(action: string): SentFrame {
    const frame = this.sent.filter((sent) => sent.action === action).at(-1);
    if (!frame) {
      throw new Error(`no ${action} was sent; sent: ${JSON.stringify(this.sent)}`);
    }
    return frame;
  }

  /** The connection ends: an optional error first (as `ws` reports a refused upgrade), then close. */
  drop(code = 1006, reason = '', error?: string): void {
    if (error !== undefined) {
      this.onerror?.({ message: error });
    }
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** Lets the client's pending promise steps run (its dial awaits the token first). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
  }
}

export function user(id: string, role: RoomUser['role'] = 'editor'): RoomUser {
  return { id, name: id, role, connected: true, lastSeen: 1 };
}

/** A member with its slot in binary pose frames. */
export function slotted(id: string, slot: number, role: RoomUser['role'] = 'editor'): RoomUser {
  return { ...user(id, role), slot };
}

/** A room_joined snapshot: `version` of the state, `seq` of the room's last event. */
export function roomInfo(
  roomId: string,
  { users = [user('me', 'host')], version = 0, epoch = 'e1', seq = 1 } = {},
): RoomInfo {
  return {
    roomId,
    users,
    state: {
      version,
      sceneUrl: null,
      sceneLoaded: false,
      treeViewState: {},
      annotations: [],
      focusPoints: [],
      sessionSettings: {},
    },
    createdAt: 5,
    epoch,
    seq,
  };
}

/** A client on fake socket and clock, opened: the server has said `connected`. */
export async function openClient(
  options: Partial<GalleryClientOptions> = {},
  connected: ServerEventMap['connected'] = { userId: 'me', resumeToken: 'T1' },
): Promise<{ client: GalleryClient; clock: FakeClock; socket: FakeSocket }> {
  const clock = new FakeClock();
  const client = new GalleryClient({
    url: 'ws://server.test/',
    userId: 'me',
    WebSocket: FakeSocket,
    clock,
    random: () => 0.5,
    ...options,
  });
  const opened = client.connect();
  await settle();
  const socket = FakeSocket.last;
  socket.receive('connected', connected);
  await opened;
  return { client, clock, socket };
}

/** Drops the connection and lets the client dial again (random 0: at once); returns the socket. */
export async function dropAndRedial(socket: FakeSocket, clock: FakeClock): Promise<FakeSocket> {
  socket.drop(1006);
  clock.advance(0);
  await settle();
  return FakeSocket.last;
}

/** Joins `roomId` through the fake server, which answers with `info`. */
export async function joinRoom(
  client: GalleryClient,
  socket: FakeSocket,
  info: RoomInfo,
): Promise<Room> {
  const joined = client.joinRoom(info.roomId);
  const { requestId } = socket.lastSent('join_room');
  socket.receive('room_joined', { requestId, roomInfo: info });
  return joined;
}
