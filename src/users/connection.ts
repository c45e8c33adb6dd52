import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Identity } from '../auth/identity.js';
import { ClientOutput } from '../bus/client-output.js';
import type { RoomUser } from '../protocol/protocol.js';

/** One client socket on this instance and the rooms it is a member of here. */
export class Connection {
  /** Rooms this connection has joined and receives events of. */
  readonly rooms = new Set<string>();
  /** Frames waiting for this turn's write; only the Fanout fills it. */
  readonly output: ClientOutput;
  /** How this connection joined each room (name, avatar, role), to register it again later. */
  readonly profiles = new Map<string, RoomUser>();
  /**
   * The newest state version this connection has been given per room (its join snapshot's, then
   * each `state_updated`): an older or repeated one is not sent again. See LocalMembership.
   */
  readonly stateVersions = new Map<string, number>();
  /** Cleared on every heartbeat tick; the socket's pong sets it again. */
  alive = true;
  readonly connectedAt = Date.now();
  /** Who this is, as the upgrade decided; a `refresh_token` replaces it with the new claims. */
  identity: Identity;

  /**
   * @param transport the TCP socket the WebSocket runs on (the upgrade request's socket); frames
   *   are written to it directly. Without it, frames go through `ws`.
   * @param identity default: an unverified identity for `userId`.
   */
  constructor(
    readonly userId: string,
    readonly socket: WebSocket,
    transport?: Duplex,
    identity?: Identity,
  ) {
    this.output = new ClientOutput(socket, transport);
    this.identity = identity ?? {
      userId,
      verified: false,
      mayCreateRooms: true,
      admin: false,
      address: '',
    };
  }

  /** Closes the socket after writing what is already queued for it. */
  close(code: number, reason: string): void {
    this.output.flush();
    this.socket.close(code, reason);
  }
}
