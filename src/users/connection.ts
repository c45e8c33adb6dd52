import type { Identity } from '../auth/identity.js';
import { Capability, type RoomUser } from '../protocol/protocol.js';
import type { ClientLink } from './client-link.js';

/**
 * What a client sees when its socket is destroyed without a close frame; never sent in one, so
 * not a CloseCode. A heartbeat kill or a failed write is counted under it (docs/metrics.md).
 */
const ABNORMAL_CLOSURE = 1006;

/** One connected client on this instance and the rooms it is a member of here. */
export class Connection {
  /** Rooms this connection has joined and receives events of. */
  readonly rooms = new Set<string>();
  /** How to reach the client: frames waiting for this turn's write (only the Fanout fills it). */
  readonly output: ClientLink;
  /** How this connection joined each room (name, avatar, role), to register it again later. */
  readonly profiles = new Map<string, RoomUser>();
  /**
   * The newest state version this connection has been given per room (its join snapshot's, then
   * each `state_updated`): an older or repeated one is not sent again. See LocalMembership.
   */
  readonly stateVersions = new Map<string, number>();
  /** Cleared on every heartbeat tick; the client's pong sets it again. */
  alive = true;
  readonly connectedAt = Date.now();
  /** Set once the server started closing it: its close is then no dropped connection. */
  closedByServer = false;
  /** Told the code of every close the server starts (gms_server_disconnects_total). */
  onServerClose?: (code: number) => void;
  /** Came with a valid resume token: a `resume` takes its seats back, not a session takeover. */
  resuming = false;
  /**
   * Work started when it connected that its frames wait for (UsersService.onConnect): a takeover
   * of the rooms its session held on another instance. Undefined when there was none.
   */
  connectWork?: Promise<void>;
  /** Who this is, as the upgrade decided; a `refresh_token` replaces it with the new claims. */
  identity: Identity;
  /** Opted in to the binary pose channel (docs/binary-poses.md): poses go to it as binary frames. */
  binaryPoses = false;
  /** On the binary pose channel, and takes its poses in the quantized form (gallery.v2q). */
  quantizedPoses = false;
  /**
   * The room id of this connection's last binary pose: the next pose naming the same room reuses
   * the string instead of decoding and checking it again (readBinaryPose).
   */
  lastPoseRoomId?: string;
  /** Fields every log line about this connection carries (its upgrade's trace ids). */
  logContext: Readonly<Record<string, string | boolean>> = {};

  /**
   * @param handle the transport's own object for this client (its WebSocket), by which the
   *   gateway finds the connection; opaque here.
   * @param identity default: an unverified identity for `userId`.
   */
  constructor(
    readonly userId: string,
    readonly handle: object,
    output: ClientLink,
    identity?: Identity,
  ) {
    this.output = output;
    this.identity = identity ?? {
      userId,
      verified: false,
      mayCreateRooms: true,
      admin: false,
      address: '',
    };
  }

  /**
   * A `hello`: turns on the capabilities asked for that the server knows, never off (a channel
   * the upgrade's subprotocol chose stays on; full frames may become quantized, not back).
   * The quantized form is the binary channel too. Answers every capability now on.
   */
  enableCapabilities(requested: readonly string[]): Capability[] {
    if (requested.includes(Capability.BinaryPosesQuantized)) {
      this.quantizedPoses = true;
    }
    if (this.quantizedPoses || requested.includes(Capability.BinaryPoses)) {
      this.binaryPoses = true;
    }
    const enabled: Capability[] = [];
    if (this.binaryPoses) {
      enabled.push(Capability.BinaryPoses);
    }
    if (this.quantizedPoses) {
      enabled.push(Capability.BinaryPosesQuantized);
    }
    return enabled;
  }

  /**
   * Destroys the socket without a close frame (it stopped answering the heartbeat, or a write to
   * it failed). It stays a dropped connection, not a close the server started: closedByServer is
   * left unset, so its seats are held for a resume as for a network drop. Counted as 1006 unless
   * the socket was already closing, whose close was counted (or was the client's) then.
   */
  terminate(): void {
    if (!this.closedByServer && this.output.isOpen()) {
      this.onServerClose?.(ABNORMAL_CLOSURE);
    }
    this.output.terminate();
  }

  /**
   * Closes a client that stopped reading (1013) without writing what is queued for it: the
   * close frame would only wait behind output it already did not read.
   */
  evict(code: number, reason: string): void {
    this.closedByServer = true;
    this.onServerClose?.(code);
    this.output.close(code, reason);
  }

  /** Closes the client after writing what is already queued for it. */
  close(code: number, reason: string): void {
    this.closedByServer = true;
    this.onServerClose?.(code);
    this.output.flush();
    this.output.close(code, reason);
  }
}
