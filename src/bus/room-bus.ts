import type { AppMessage, ServerEvent, ServerMessage } from '../protocol/protocol.js';

export const ROOM_BUS = Symbol('ROOM_BUS');

/** A room ended here by another instance: deleted (no userId), or a member here kicked. */
export type MembershipEndedListener = (roomId: string, userId?: string) => void;

/** This instance may have missed events of a room: its members here need the store's view. */
export type ResyncListener = (roomId: string) => void;

/** Another instance said a member connected here left the room. */
export type LiveMemberLeftListener = (roomId: string, userId: string) => void;

/**
 * Delivers room events to the members of a room wherever they are connected. The local
 * implementation reaches this instance's sockets; a clustered one also relays through Redis.
 */
export interface RoomBus {
  /**
   * Sends an event to every member of the room except `exceptUserId`; serializes it once. Never
   * dropped (poses, which may be, go through publishPose).
   */
  publish<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId?: string,
  ): void;

  /**
   * A throwaway pose (a `message` event) from `senderId` to every other member, wherever it is
   * connected; may be dropped for members that cannot keep up. `slot` is the sender's slot in the
   * room: members on the binary pose channel get the pose as an entry of their binary frame.
   */
  publishPose(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    message: AppMessage,
  ): void;

  /**
   * publishPose for a pose that came on the binary pose channel, in entry form: 40 bytes laid out
   * as in docs/binary-poses.md (its slot field is not read), read during the call only. It is
   * turned into the `pose_update` message only where one is needed: for JSON members, or for
   * another instance.
   */
  publishPoseEntry(roomId: string, senderId: string, slot: number | undefined, entry: Buffer): void;

  /**
   * An event every member gets, the actor as the reply to its request: `reply` is called with
   * the event as published (with its `seq` when resume is on), which the actor gets instead.
   */
  publishWithReply<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    actorUserId: string,
    reply: (message: ServerMessage<E>) => void,
  ): void;

  /**
   * A committed `state_updated`. The bus that comes with a shared store finds it already published
   * to the other instances, in the same step as the commit; a single-instance bus publishes it.
   * Either way it is delivered to this instance's members in commit order, then calls
   * `delivered` (where the actor's reply goes out, so the actor sees versions in order too), with
   * the event as published when it differs (numbered).
   * Resolves once that has happened (or the echo's wait ran out and it was delivered anyway).
   */
  deliverCommitted<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId: string,
    delivered: (numbered?: ServerMessage<E>) => void,
  ): Promise<void>;

  /**
   * Sends an event to one member of the room; false when that member is not reachable. A member
   * whose connection dropped and whose seat is held gets it when it resumes.
   */
  sendToMember<E extends ServerEvent>(
    roomId: string,
    userId: string,
    message: ServerMessage<E>,
  ): boolean;

  /**
   * Makes sure this instance receives the room's events from now on; called when a join begins,
   * before the store takes the joiner's snapshot, so nothing published after it is missed.
   */
  watch(roomId: string): Promise<void>;

  /**
   * Who to tell when an event from another instance ends a membership on this one (a kick
   * notice, a deleted room), after the event was delivered: the room service, which owns
   * memberships. A single-instance bus never calls it.
   */
  onMembershipEnded(listener: MembershipEndedListener): void;

  /**
   * Who to tell when this instance may have missed events of a room (a gap in the room's
   * envelope numbers, a subscriber that reconnected): the room service, which resyncs the room's
   * members here. A single-instance bus never calls it.
   */
  onResyncNeeded(listener: ResyncListener): void;

  /**
   * Who to tell when another instance announces that a member connected here left: the room
   * service, which checks the store. A membership event is published after its store change, so
   * the late leave of the same user's former socket elsewhere can arrive after the join of its
   * socket here. A single-instance bus never calls it.
   */
  onLiveMemberLeft(listener: LiveMemberLeftListener): void;
}
