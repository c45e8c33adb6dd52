import {
  APP_SUBPROTOCOL,
  ClientAction,
  ErrorCode,
  POSE_UPDATE,
  type RoomConfig,
  type ServerEvent,
  type ServerEventMap,
  type ServerMessage,
  type UserInfo,
} from '../../src/protocol/protocol.js';
import { backoffDelay, isTerminalClose, refusedStatus, type BackoffOptions } from './backoff.js';
import { Emitter, type Handler } from './emitter.js';
import { ClientErrorCode, GalleryError } from './errors.js';
import { PendingRequests } from './pending.js';
import {
  BINARY_SUBPROTOCOL,
  decodePoseFrame,
  encodeClientPose,
  FRAME_SERVER_POSES,
} from './pose-codec.js';
import { PoseLimiter } from './pose-limiter.js';
import { Room, type JoinOptions, type OutgoingPose, type RoomLink } from './room.js';
import { systemClock, type Clock, type SocketConstructor, type SocketLike } from './socket.js';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface GalleryClientOptions {
  /** ws:// or wss:// address of the server. */
  url: string;
  /** Sent as `?userId=`; the server assigns one when absent (AUTH_MODE=jwt: the token's `sub`). */
  userId?: string;
  /** AUTH_MODE=jwt: sent as the subprotocol `bearer.<token>`, which browsers can set. */
  token?: string;
  /** AUTH_MODE=jwt: asked for before every connection attempt, so reconnects use a fresh token. */
  getToken?: () => string | Promise<string>;
  /** AUTH_MODE=api-key: sent as `?apiKey=`. */
  apiKey?: string;
  /** The WebSocket constructor; default `globalThis.WebSocket` (on Node 20 pass `ws`'s). */
  WebSocket?: SocketConstructor;
  /** How long a request waits for its reply. Default 10 s. */
  requestTimeoutMs?: number;
  /** Reconnect after a drop. Default true. */
  reconnect?: boolean;
  backoff?: BackoffOptions;
  /** The server's RATE_POSES_PER_SEC (default 60): `sendPose` stays within it. */
  posesPerSecond?: number;
  /**
   * Offer the binary pose channel (subprotocol `gallery.v2`, docs/binary-poses.md): when the
   * server takes it, poses go both ways as small binary frames; otherwise they stay JSON. Either
   * way the app sees the same `pose` and `message` events. Default false.
   */
  binaryPoses?: boolean;
  clock?: Clock;
  random?: () => number;
}

export interface ConnectionStateEvent {
  state: ConnectionState;
  previous: ConnectionState;
  /** The close that caused the change. */
  code?: number;
  reason?: string;
}

/** Every server event as received (replies included), plus the connection's state. */
export type ClientEvents = ServerEventMap & { connectionState: ConnectionStateEvent };

/** A connection to the server: requests as promises, rooms kept current, reconnects that resume. */
export class GalleryClient {
  private readonly events = new Emitter<ClientEvents>();
  private readonly rooms = new Map<string, Room>();
  /** Joins in flight, by requestId: their room is made when room_joined arrives. */
  private readonly joining = new Map<string, JoinOptions & { roomId: string }>();
  /** Rooms left while reconnecting, or whose leave_room a drop cut off: let go once back. */
  private readonly leaving = new Set<string>();
  /** Rooms with a leave_room in flight: a `resumed` naming one meanwhile needs no second. */
  private readonly leavesInFlight = new Set<string>();
  /**
   * Rooms the SDK let go of (left, or a join it gave up on) and not joined since: a seat the
   * server gives back there is left. Other rooms it does not follow (joined with `request`, or
   * moved here from another instance by a session takeover) are the app's, and stay.
   */
  private readonly letGo = new Set<string>();
  /** Joins again waiting out UNAVAILABLE or RATE_LIMITED; a reconnect rejoins anyway. */
  private readonly rejoinTimers = new Set<unknown>();
  private readonly pending: PendingRequests;
  private readonly poses: PoseLimiter;
  private readonly clock: Clock;
  private readonly link: RoomLink;
  private socket?: SocketLike;
  private socketError: unknown;
  private current: ConnectionState = 'idle';
  private attempt = 0;
  private retryTimer: unknown;
  /** Counts dials and closes: a dial that is not the latest when its token comes gives up. */
  private dialGeneration = 0;
  /** What reconnects offer without getToken: options.token, then the last one refreshed. */
  private token?: string;
  private waiters: Array<{ resolve(): void; reject(error: GalleryError): void }> = [];
  private resumeToken?: string;
  private assignedUserId?: string;

  constructor(private readonly options: GalleryClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.token = options.token;
    this.pending = new PendingRequests(this.clock, options.requestTimeoutMs ?? 10_000);
    this.poses = new PoseLimiter(this.clock, options.posesPerSecond ?? 60);
    this.link = {
      request: (action, body, expect) => this.request(action, body, expect),
      send: (action, body) => this.send(action, body),
      // Poses are worthless once late: none is kept for after a reconnect.
      sendPose: (roomId, pose) => {
        if (this.current === 'open') {
          this.poses.submit(roomId, () => this.current === 'open' && this.sendPose(roomId, pose));
        }
      },
      leave: (roomId) => this.leaveRoom(roomId),
      forget: (room) => this.forget(room),
    };
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The userId the server gave this connection (from `connected`). */
  get userId(): string | undefined {
    return this.assignedUserId ?? this.options.userId;
  }

  /** How poses travel on this connection: 'binary' when the server took `gallery.v2`. */
  get poseChannel(): 'binary' | 'json' {
    return this.options.binaryPoses === true && this.socket?.protocol === BINARY_SUBPROTOCOL
      ? 'binary'
      : 'json';
  }

  /** The rooms this client is in, by id. */
  get joinedRooms(): ReadonlyMap<string, Room> {
    return this.rooms;
  }

  on<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): () => void {
    return this.events.on(event, handler);
  }

  off<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): void {
    this.events.off(event, handler);
  }

  /** Resolves when the server said `connected`; rejects if the client closes first. */
  connect(): Promise<void> {
    if (this.current === 'open') {
      return Promise.resolve();
    }
    const opened = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.current === 'idle' || this.current === 'closed') {
      this.attempt = 0;
      this.setState('connecting');
      void this.dial();
    }
    return opened;
  }

  /** Closes for good (code 1000: the server counts it as leaving every room). */
  close(): void {
    this.resumeToken = undefined; // a close frame leaves every room: nothing to resume
    this.shutDown({ code: 1000, reason: 'Client closed' });
    this.rooms.forEach((room) => room.close('disconnected'));
  }

  /** Creates a room without joining it; resolves with its id. */
  async createRoom(config: RoomConfig = {}, roomId?: string): Promise<string> {
    const reply = await this.request(ClientAction.CreateRoom, { roomId, config }, 'room_created');
    return reply.roomId;
  }

  /** Joins (or creates, on an unknown id) a room and returns it, kept current from then on. */
  async joinRoom(
    roomId: string,
    userInfo?: UserInfo,
    options: { password?: string } = {},
  ): Promise<Room> {
    const joinOptions: JoinOptions = { userInfo, password: options.password };
    return this.join(roomId, joinOptions);
  }

  /** Round trip in milliseconds. */
  async ping(): Promise<number> {
    const started = this.clock.now();
    await this.request(ClientAction.Ping, {}, 'pong');
    return this.clock.now() - started;
  }

  /**
   * AUTH_MODE=jwt: extends the session with a fresh token; resolves with the new end. Reconnects
   * offer it from then on (the old one may have expired), unless getToken was given.
   */
  async refreshToken(token: string): Promise<number> {
    const reply = await this.request(ClientAction.RefreshToken, { token }, 'token_refreshed');
    this.token = token;
    return reply.expiresAt;
  }

  /** One request, resolved by its reply event or rejected with a GalleryError. */
  request<E extends ServerEvent>(
    action: ClientAction,
    body: object,
    expect: E,
  ): Promise<ServerEventMap[E]> {
    const socket = this.openSocket();
    const requestId = this.pending.nextId();
    const reply = this.pending.wait(requestId, expect);
    socket.send(JSON.stringify({ ...body, action, requestId }));
    return reply;
  }

  /** A message without reply (broadcast, send_message); failures come as `error` events. */
  send(action: ClientAction, body: object): void {
    this.openSocket().send(JSON.stringify({ ...body, action }));
  }

  /** One pose, now: a binary frame when the server took gallery.v2 and the pose fits one. */
  private sendPose(roomId: string, { position, rotation, timestamp }: OutgoingPose): void {
    const frame =
      this.poseChannel === 'binary'
        ? encodeClientPose(roomId, timestamp, position, rotation)
        : undefined;
    if (frame) {
      this.openSocket().send(frame);
      return;
    }
    const message = { type: POSE_UPDATE, timestamp, data: { position, rotation } };
    this.send(ClientAction.Broadcast, { roomId, message });
  }

  private openSocket(): SocketLike {
    if (this.current !== 'open' || !this.socket) {
      throw new GalleryError(ClientErrorCode.NotConnected, `The client is ${this.current}`);
    }
    return this.socket;
  }

  private async join(roomId: string, joinOptions: JoinOptions): Promise<Room> {
    // First: a refused join must leave no pending request (timer, rejection) behind.
    const socket = this.openSocket();
    const requestId = this.pending.nextId();
    const reply = this.pending.wait(requestId, 'room_joined');
    this.joining.set(requestId, { ...joinOptions, roomId });
    this.letGo.delete(roomId);
    try {
      socket.send(
        JSON.stringify({ action: ClientAction.JoinRoom, requestId, roomId, ...joinOptions }),
      );
      await reply;
    } catch (error) {
      // Given up on (a timeout, a drop): the server may seat it all the same.
      this.letGo.add(roomId);
      throw error;
    } finally {
      this.joining.delete(requestId);
    }
    const room = this.rooms.get(roomId);
    if (!room) {
      throw new GalleryError(ClientErrorCode.ConnectionClosed, `Room ${roomId} was lost`);
    }
    return room;
  }

  private leaveRoom(roomId: string): Promise<unknown> {
    this.letGo.add(roomId);
    if (this.current === 'reconnecting') {
      this.leaving.add(roomId);
      return Promise.resolve();
    }
    return this.sendLeave(roomId);
  }

  /** leave_room, kept in leavesInFlight until answered. */
  private sendLeave(roomId: string): Promise<unknown> {
    const left = this.request(ClientAction.LeaveRoom, { roomId }, 'room_left');
    this.leavesInFlight.add(roomId);
    const settled = (): boolean => this.leavesInFlight.delete(roomId);
    left.then(settled, settled);
    return left;
  }

  /**
   * The server has this user in a room the SDK let go of (left while the connection dropped, a
   * join answered after its timeout): leave it, or the user stays there. A NOT_IN_ROOM answer
   * means it was gone already.
   */
  private leaveIfUnfollowed(roomId: string): void {
    const joining = [...this.joining.values()].some((join) => join.roomId === roomId);
    const followed = this.rooms.has(roomId) || joining;
    if (this.letGo.has(roomId) && !followed && !this.leavesInFlight.has(roomId)) {
      this.sendLeave(roomId).catch(() => undefined);
    }
  }

  private forget(room: Room): void {
    if (this.rooms.get(room.id) === room) {
      this.rooms.delete(room.id);
      this.poses.clear(room.id);
    }
  }

  private setState(
    state: ConnectionState,
    close: { code?: number; reason?: string } = {},
    previous = this.current,
  ): void {
    this.current = state;
    if (state === 'open' || state === 'closed') {
      const waiters = this.waiters;
      this.waiters = [];
      const error = new GalleryError(ClientErrorCode.ConnectionClosed, close.reason ?? 'Closed');
      waiters.forEach((waiter) => (state === 'open' ? waiter.resolve() : waiter.reject(error)));
    }
    // Not spread: a real CloseEvent's code and reason are prototype getters.
    const { code, reason } = close;
    this.events.emit('connectionState', { state, previous, code, reason });
  }

  private async dial(): Promise<void> {
    // A close() or another dial while the token is fetched makes this one stale: it gives up,
    // or two sockets would open, the later replacing the earlier (4000, final).
    const generation = ++this.dialGeneration;
    let token: string | undefined;
    try {
      token = await (this.options.getToken?.() ?? this.token);
    } catch (error) {
      if (generation === this.dialGeneration) {
        this.onClose(undefined, { code: 1006, reason: `getToken failed: ${String(error)}` });
      }
      return;
    }
    if (generation !== this.dialGeneration) {
      return;
    }
    let socket: SocketLike;
    try {
      const Socket = this.options.WebSocket ?? globalWebSocket();
      socket = new Socket(this.dialUrl(), this.protocols(token));
      if (this.options.binaryPoses === true) {
        socket.binaryType = 'arraybuffer';
      }
    } catch (error) {
      // A malformed URL or a missing WebSocket: another try cannot fix it.
      this.shutDown({ code: 1006, reason: String(error) });
      return;
    }
    this.attach(socket);
  }

  /**
   * `gallery` always: a refused upgrade then closes with a code a browser can read. gallery.v2
   * after it: a server without the binary channel picks the first it knows.
   */
  private protocols(token: string | undefined): string[] {
    const protocols = [APP_SUBPROTOCOL];
    if (this.options.binaryPoses === true) {
      protocols.push(BINARY_SUBPROTOCOL);
    }
    if (token) {
      protocols.push(`bearer.${token}`);
    }
    return protocols;
  }

  private dialUrl(): string {
    const url = new URL(this.options.url);
    const params = { userId: this.userId, apiKey: this.options.apiKey, resume: this.resumeToken };
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined) {
        url.searchParams.set(key, value);
      }
    }
    return url.toString();
  }

  private attach(socket: SocketLike): void {
    this.socket = socket;
    this.socketError = undefined;
    // A socket given up on (closed, replaced) is ignored: its late close must not end the new one.
    socket.onmessage = (event) => {
      if (socket !== this.socket) {
        return;
      }
      if (typeof event.data === 'string') {
        this.onFrame(event.data);
      } else if (this.poseChannel === 'binary') {
        this.onBinaryFrame(event.data);
      }
    };
    socket.onerror = (event) => {
      if (socket === this.socket) {
        this.socketError = event;
      }
    };
    socket.onclose = (event) => {
      if (socket === this.socket) {
        this.onClose(refusedStatus(this.socketError), event);
      }
    };
  }

  private onFrame(frame: string): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(frame) as ServerMessage;
    } catch {
      return; // the server sends JSON only
    }
    if (typeof message?.event !== 'string' || typeof message.data !== 'object') {
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: ServerMessage): void {
    this.route(message);
    this.pending.settle(message);
    this.events.emit(message.event, message.data);
  }

  /**
   * Each entry becomes the `message` its JSON twin would be. Skipped: this client's own slot (the
   * sender gets the frame too) and slots not known yet (user_joined in flight; the next tick).
   */
  private onBinaryFrame(data: unknown): void {
    const frame = decodePoseFrame(data);
    const room = frame?.type === FRAME_SERVER_POSES ? this.rooms.get(frame.roomId) : undefined;
    if (!frame || !room) {
      return;
    }
    for (const { slot, timestamp, position, rotation } of frame.poses) {
      const senderId = room.userAt(slot);
      if (senderId === undefined || senderId === this.userId) {
        continue;
      }
      // 0: a JSON sender gave none. Unknown, so placed by arrival.
      const message = {
        type: POSE_UPDATE,
        senderId,
        timestamp: timestamp || undefined,
        data: { position, rotation },
      };
      this.dispatch({ event: 'message', data: { roomId: room.id, senderId, message } });
    }
  }

  /** Room bookkeeping first, so that a settled request already sees the room changed. */
  private route(message: ServerMessage): void {
    switch (message.event) {
      case 'connected':
        this.onConnected(message.data);
        return;
      case 'room_joined':
        this.onRoomJoined(message.data);
        return;
      case 'room_left':
        // Settled now, not a microtask later: a drop right after must not send the leave again.
        this.leavesInFlight.delete(message.data.roomId);
        this.letGo.delete(message.data.roomId);
        // Without requestId: the server found this member gone from the room (missed events).
        if (message.data.requestId === undefined) {
          this.rooms.get(message.data.roomId)?.close('lost');
        }
        return;
      case 'resumed':
        this.onResumed(message.data);
        return;
      case 'user_joined':
      case 'user_left':
      case 'user_updated':
      case 'message':
      case 'state_updated':
      case 'state':
      case 'kicked':
      case 'room_deleted':
        this.roomOf(message)?.handle(message);
        return;
      case 'room_created':
      case 'pong':
      case 'hello':
      case 'token_refreshed':
      case 'error':
        return; // replies only: settled as requests
    }
  }

  private roomOf(message: ServerMessage): Room | undefined {
    const roomId = (message.data as { roomId?: unknown }).roomId;
    if (typeof roomId === 'string') {
      return this.rooms.get(roomId);
    }
    // A direct message from a server that does not name its room: it can only be the one room.
    return message.event === 'message' && this.rooms.size === 1
      ? [...this.rooms.values()][0]
      : undefined;
  }

  /** Seats are asked back before 'open': the server takes a socket's messages in order. */
  private onConnected(data: ServerEventMap['connected']): void {
    this.assignedUserId = data.userId;
    this.resumeToken = data.resumeToken; // absent: resume is off on this server
    this.attempt = 0;
    const previous = this.current;
    this.current = 'open';
    const leaving = [...this.leaving];
    this.leaving.clear();
    const leave = (): void => leaving.forEach((roomId) => this.leaveIfUnfollowed(roomId));
    if (data.resumed === true && this.rooms.size + leaving.length > 0) {
      this.resume();
      leave();
    } else {
      this.rejoin([...this.rooms.values()]);
      // Resume off: had the server not seen the drop, every room moved to this connection (a
      // session takeover), the left ones too. With resume on and the token not taken, the seats
      // are gone.
      if (data.resumeToken === undefined) {
        leave();
      }
    }
    this.setState('open', {}, previous);
  }

  private onRoomJoined(data: ServerEventMap['room_joined']): void {
    const info = data.roomInfo;
    const existing = this.rooms.get(info.roomId);
    if (existing) {
      existing.applySnapshot(info);
      return;
    }
    const join = data.requestId === undefined ? undefined : this.joining.get(data.requestId);
    if (join?.roomId === info.roomId) {
      const { roomId, ...joinOptions } = join;
      this.rooms.set(roomId, new Room(roomId, info, joinOptions, this.link));
    } else {
      this.leaveIfUnfollowed(info.roomId);
    }
  }

  private resume(): void {
    const rooms = [...this.rooms.values()].map((room) => room.position());
    this.request(ClientAction.Resume, { rooms }, 'resumed').catch((error: unknown) => {
      // RESUME_FAILED (or no answer): the seats are not coming back by resume; join again.
      if (error instanceof GalleryError && error.code !== ClientErrorCode.ConnectionClosed) {
        this.rejoin([...this.rooms.values()]);
      }
    });
  }

  /** Recovered rooms get their missed events next; snapshots replace; the rest are joined again. */
  private onResumed(data: ServerEventMap['resumed']): void {
    const answered = new Set<string>();
    for (const entry of data.rooms) {
      const room = this.rooms.get(entry.roomId);
      answered.add(entry.roomId);
      if (!room) {
        this.leaveIfUnfollowed(entry.roomId); // every held seat came back, listed or not
      } else if (entry.recovered) {
        room.setPosition(entry.epoch, entry.seq);
      } else {
        room.applySnapshot(entry.roomInfo);
      }
    }
    // The resume took back every held seat: these were kicked, or deleted (a join would recreate).
    data.lost.forEach((roomId) => this.rooms.get(roomId)?.close('lost'));
    this.rejoin([...this.rooms.values()].filter((room) => !answered.has(room.id)));
  }

  private rejoin(rooms: Room[]): void {
    const socket = this.socket;
    for (const room of rooms) {
      this.join(room.id, room.joinOptions).catch((error: unknown) => {
        if (!(error instanceof GalleryError) || isConnectionLoss(error)) {
          return; // the next connection resumes or rejoins it
        }
        const delay = rejoinDelay(error);
        if (delay === undefined) {
          room.close('lost', error); // kicked, deleted meanwhile, full
          return;
        }
        // Again on the same connection while the room is still wanted; a new one rejoins anyway.
        // Spread out, so that rooms refused together are not all refused together again.
        const spread = 1 + 0.5 * (this.options.random ?? Math.random)();
        this.afterRejoinDelay(delay * spread, () => {
          if (this.socket === socket && this.rooms.get(room.id) === room && !room.leaving) {
            this.rejoin([room]);
          }
        });
      });
    }
  }

  private afterRejoinDelay(delay: number, retry: () => void): void {
    const timer = this.clock.setTimeout(() => {
      this.rejoinTimers.delete(timer);
      retry();
    }, delay);
    this.rejoinTimers.add(timer);
  }

  private clearRejoinTimers(): void {
    this.rejoinTimers.forEach((timer) => this.clock.clearTimeout(timer));
    this.rejoinTimers.clear();
  }

  private onClose(status: number | undefined, close: { code: number; reason: string }): void {
    this.detach();
    this.clearRejoinTimers();
    this.pending.rejectAll(`Connection closed (${close.code})`);
    this.poses.clear();
    const terminal = isTerminalClose(close.code, status);
    if (terminal || this.options.reconnect === false) {
      this.shutDown(close);
      this.rooms.forEach((room) => room.close('disconnected'));
      return;
    }
    // A leave cut by the drop may not have reached the server: sent again once back.
    this.leavesInFlight.forEach((roomId) => this.leaving.add(roomId));
    this.setState('reconnecting', close);
    const delay = backoffDelay(
      this.attempt,
      this.options.random ?? Math.random,
      this.options.backoff,
    );
    this.attempt += 1;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      void this.dial();
    }, delay);
  }

  private shutDown(close: { code: number; reason: string }): void {
    this.dialGeneration += 1; // a dial waiting for its token gives up
    if (this.retryTimer !== undefined) {
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.clearRejoinTimers();
    this.leaving.clear();
    this.letGo.clear();
    const socket = this.detach();
    socket?.close(1000, 'Client closed');
    this.pending.rejectAll(close.reason);
    this.poses.clear();
    if (this.current !== 'closed') {
      this.setState('closed', close);
    }
  }

  private detach(): SocketLike | undefined {
    const socket = this.socket;
    this.socket = undefined;
    return socket;
  }
}

/** The connection went away under the request: not the room's fault. */
function isConnectionLoss(error: GalleryError): boolean {
  return (
    error.code === ClientErrorCode.ConnectionClosed || error.code === ClientErrorCode.NotConnected
  );
}

/**
 * When a refused join again is worth another try: UNAVAILABLE (Redis was slow, as in a rolling
 * deploy) a second later; RATE_LIMITED (many rooms rejoining at once, or the room's password
 * attempts) once the server says it would fit, within bounds. Undefined: the room is lost.
 */
function rejoinDelay(error: GalleryError): number | undefined {
  if (error.code === ErrorCode.Unavailable) {
    return 1000;
  }
  if (error.code === ErrorCode.RateLimited) {
    return Math.min(Math.max(error.retryAfterMs ?? 1000, 100), 30_000);
  }
  return undefined;
}

function globalWebSocket(): SocketConstructor {
  const Socket = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  if (!Socket) {
    throw new GalleryError(
      ClientErrorCode.NotConnected,
      'No global WebSocket: pass one as the WebSocket option (on Node 20: `ws`)',
    );
  }
  return Socket;
}
