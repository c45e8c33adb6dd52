import type { WebSocket } from 'ws';

/** One client socket on this instance and the rooms it is a member of here. */
export class Connection {
  /** Rooms this connection has joined and receives events of. */
  readonly rooms = new Set<string>();
  /** Cleared on every heartbeat tick; the socket's pong sets it again. */
  alive = true;
  readonly connectedAt = Date.now();

  constructor(
    readonly userId: string,
    readonly socket: WebSocket,
  ) {}
}
