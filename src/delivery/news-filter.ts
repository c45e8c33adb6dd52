import { ServerEvent, type RoomInfo } from '../protocol/protocol.js';
import type { BufferedEvent } from '../users/local-membership.js';

/**
 * Decides which events held back during a join are news to a joiner holding this snapshot,
 * walking them in order: state updates newer than its version, arrivals of users it does not
 * list (yet), departures of users it lists (still).
 *
 * The joiner's own arrivals and departures never are: the snapshot, taken as its join committed,
 * lists it. A `user_left` of its own that was held back is an older seat's (a socket of the same
 * user that dropped on another instance just before this one joined), and passing it on would
 * leave the client believing it is not in the room it is in.
 */
export function newsFilter(
  snapshot: RoomInfo,
  joinerId: string,
  admitsStateVersion: (version: number) => boolean,
): (held: BufferedEvent) => boolean {
  const present = new Set(snapshot.users.map((user) => user.id));
  return (held) => {
    const data = held.data as { version?: number; user?: { id: string }; userId?: string };
    switch (held.event) {
      case ServerEvent.StateUpdated:
        return admitsStateVersion(data.version ?? 0);
      case ServerEvent.UserJoined:
        return data.user?.id !== joinerId && toggle(present, data.user?.id, true);
      case ServerEvent.UserLeft:
        return data.userId !== joinerId && toggle(present, data.userId, false);
      default:
        return true;
    }
  };
}

/** Moves `userId` in or out of `present`; true when that changed something. */
function toggle(present: Set<string>, userId: string | undefined, joined: boolean): boolean {
  if (userId === undefined || present.has(userId) === joined) {
    return false;
  }
  if (joined) {
    present.add(userId);
  } else {
    present.delete(userId);
  }
  return true;
}
