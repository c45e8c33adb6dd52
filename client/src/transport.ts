import {
  ClientAction,
  ServerEvent,
  type AppMessage,
  type RoomConfig,
  type RoomInfo,
  type ServerEventMap,
  type UserInfo,
} from '../../src/protocol/protocol.js';
import { GalleryClient, type ClientEvents, type GalleryClientOptions } from './client.js';
import { Emitter, type Handler } from './emitter.js';
import { ClientErrorCode, GalleryError } from './errors.js';
import type { Room, StateChange } from './room.js';
import type { SocketConstructor } from './socket.js';

export interface TransportConnectOptions {
  serverUrl: string;
  userId?: string;
  apiKey?: string;
  /** Not in the original client: AUTH_MODE=jwt. */
  token?: string;
  /** Not in the original client: the WebSocket constructor on Node 20 (`ws`). */
  WebSocket?: SocketConstructor;
}

/**
 * The original gallery-viewer client's API, so code written against it keeps working. It runs on
 * GalleryClient (reconnects and resumes too); new code should use GalleryClient.
 */
export class WebSocketTransport {
  private readonly events = new Emitter<ClientEvents>();
  private client?: GalleryClient;

  /** Options for the GalleryClient underneath (timeouts, reconnect, the WebSocket constructor). */
  constructor(private readonly defaults: Partial<GalleryClientOptions> = {}) {}

  async connect(options: TransportConnectOptions): Promise<void> {
    this.client?.close();
    const client = new GalleryClient({ ...this.defaults, ...options, url: options.serverUrl });
    this.client = client;
    for (const event of [...Object.values(ServerEvent), 'connectionState' as const]) {
      client.on(event, (data) => this.events.emit(event, data as never));
    }
    await client.connect();
  }

  disconnect(): void {
    this.client?.close();
    this.client = undefined;
  }

  isConnected(): boolean {
    return this.client?.state === 'open';
  }

  get userId(): string | undefined {
    return this.client?.userId;
  }

  /** Resolves with the new room's id (`config.roomId` or one the server makes up). */
  createRoom(config: RoomConfig & { roomId?: string } = {}): Promise<string> {
    const { roomId, ...roomConfig } = config;
    return this.connected().createRoom(roomConfig, roomId);
  }

  /** Resolves with the room as `room_joined` gave it. */
  async joinRoom(roomId: string, userInfo?: UserInfo, password?: string): Promise<RoomInfo> {
    const room = await this.connected().joinRoom(roomId, userInfo, { password });
    return room.info();
  }

  async leaveRoom(roomId: string): Promise<void> {
    await this.room(roomId).leave();
  }

  broadcast(roomId: string, message: AppMessage): void {
    this.connected().send(ClientAction.Broadcast, { roomId, message });
  }

  sendMessage(targetUserId: string, message: AppMessage): void {
    this.connected().send(ClientAction.SendMessage, { targetUserId, message });
  }

  async updateState(roomId: string, change: StateChange): Promise<ServerEventMap['state_updated']> {
    return this.room(roomId).updateState(change);
  }

  /** Server events by name (`message`, `user_joined`, `user_left`, ...) and `connectionState`. */
  on<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): () => void {
    return this.events.on(event, handler);
  }

  off<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): void {
    this.events.off(event, handler);
  }

  private connected(): GalleryClient {
    if (!this.client) {
      throw new GalleryError(ClientErrorCode.NotConnected, 'Call connect() first');
    }
    return this.client;
  }

  private room(roomId: string): Room {
    const room = this.connected().joinedRooms.get(roomId);
    if (!room) {
      throw new GalleryError(ClientErrorCode.NotConnected, `Not in room ${roomId}`);
    }
    return room;
  }
}
