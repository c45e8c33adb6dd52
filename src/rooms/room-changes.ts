import type { RoomInfo, RoomUser, StateOp, StatePatch } from '../protocol/protocol.js';
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

/** Turns committed room changes into events and replies; resolves once they are delivered. */
export interface RoomChangeDelivery {
  deliver(change: RoomChange): Promise<void> | void;
}
