import type {
  ResumePosition,
  RoomInfo,
  RoomUser,
  StateOp,
  StatePatch,
} from '../protocol/protocol.js';
import type { HistoryEntry } from '../history/room-history.js';
import type { Connection } from '../users/connection.js';
import type { BufferedEvent } from '../users/local-membership.js';

export const ROOM_CHANGE_DELIVERY = Symbol('ROOM_CHANGE_DELIVERY');

/** The request a change answers: its sender gets the reply, with the requestId. */
export interface RequestOrigin {
  readonly connection: Connection;
  readonly requestId?: string;
}

/**
 * What changed in a room, as the room and state services report it once committed. They decide
 * nothing about frames: the delivery (delivery/room-delivery.service.ts) decides which event
 * each member gets, and the reply the request's sender gets.
 */
export type RoomChange =
  | {
      readonly kind: 'member_joined';
      readonly roomId: string;
      readonly origin: RequestOrigin;
      /** The joiner's snapshot (its `room_joined`). */
      readonly roomInfo: RoomInfo;
      readonly user: RoomUser;
      /** Events that reached the joiner while its join was pending, to be sent after the reply. */
      readonly held: readonly BufferedEvent[];
      readonly alreadyMember: boolean;
      readonly roleChanged: boolean;
    }
  | {
      readonly kind: 'member_left';
      readonly roomId: string;
      readonly userId: string;
      /** Who hosts now, when the host left. */
      readonly newHost?: RoomUser;
      /** `leave_room` (its sender gets `room_left`) or `kick_user` (its sender gets `user_left`). */
      readonly origin?: RequestOrigin;
      readonly kicked?: boolean;
      /** False: the store had no such member, so only the sender is answered. Default true. */
      readonly announce?: boolean;
    }
  | {
      /** A member's connection dropped (its seat is held) or came back: `user.connected`. */
      readonly kind: 'member_updated';
      readonly roomId: string;
      readonly user: RoomUser;
    }
  | {
      /**
       * A member still connected here that another instance removed, taking this one for dead,
       * is a member again: the room was told it left, so it is told it joined.
       */
      readonly kind: 'member_returned';
      readonly roomId: string;
      readonly user: RoomUser;
    }
  | {
      /** A client that dropped took its seats back (`resume`): the reply, then what it missed. */
      readonly kind: 'member_resumed';
      readonly origin: RequestOrigin;
      readonly seats: readonly ResumedSeat[];
      /** Rooms it asked for whose seats are gone (the grace ran out, a kick, a deleted room). */
      readonly lost: readonly string[];
    }
  | {
      /**
       * This instance may have missed events of the room: a member here gets the store's view
       * (`roomInfo`: a fresh `room_joined`), or `room_left` when it is no member any more.
       */
      readonly kind: 'member_resynced';
      readonly roomId: string;
      readonly connection: Connection;
      readonly roomInfo?: RoomInfo;
    }
  | {
      /** A room found without a host got one (after Redis lost it): every member is told. */
      readonly kind: 'host_appointed';
      readonly roomId: string;
      readonly host: RoomUser;
    }
  | {
      /** The kicked member's own notice, before its membership ends. */
      readonly kind: 'member_kicked';
      readonly roomId: string;
      readonly userId: string;
    }
  | {
      readonly kind: 'roles_changed';
      readonly roomId: string;
      /** Members whose role the change also moved (a host handing over), before the target. */
      readonly alsoChanged: readonly RoomUser[];
      readonly target: RoomUser;
      readonly origin: RequestOrigin;
    }
  | {
      readonly kind: 'room_deleted';
      readonly roomId: string;
      readonly reason: 'deleted' | 'idle_timeout';
      /** `delete_room`: its sender gets the `room_deleted` as its reply. */
      readonly origin?: RequestOrigin;
      /** Whether anyone may still be in the room to be told. */
      readonly announce: boolean;
    }
  | {
      readonly kind: 'state_committed';
      readonly roomId: string;
      readonly version: number;
      readonly patch?: StatePatch;
      readonly ops?: StateOp[];
      readonly origin: RequestOrigin;
    };

/** One seat taken back by a resume, its local membership completed in the same step. */
export interface ResumedSeat {
  readonly roomId: string;
  /** The room when the seat was taken back, and the member (connected again). */
  readonly roomInfo: RoomInfo;
  readonly user: RoomUser;
  /** What the client said it has of the room, if anything. */
  readonly from?: ResumePosition;
  /**
   * What it missed since `from`, read from the history while the seat was taken back; undefined
   * when the history cannot give all of it (the client then gets the snapshot).
   */
  readonly missed?: readonly HistoryEntry[];
  /** Events that reached the seat while it was being taken back. */
  readonly held: readonly BufferedEvent[];
  /** Its seat was gone: the resume joined the room again, as a new member. */
  readonly joined?: boolean;
}

/** Turns committed room changes into events and replies; resolves once they are delivered. */
export interface RoomChangeDelivery {
  deliver(change: RoomChange): Promise<void> | void;
}
