import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, ROLE_RANK, type Role } from '../protocol/protocol.js';

/** The errors both room stores raise for the same rule, worded once. */
export const RoomErrors = {
  quota(count: number, maxRooms: number): ProtocolError {
    return new ProtocolError(
      ErrorCode.RoomQuota,
      `You already have ${count} rooms; at most ${maxRooms}`,
    );
  },

  roleCap(userId: string, maxRole: Role): ProtocolError {
    return ProtocolError.forbidden(`${userId}'s token allows at most ${maxRole} in this room`);
  },

  roomLimit(maxRooms: number): ProtocolError {
    return new ProtocolError(
      ErrorCode.RoomLimit,
      `The server holds its maximum of ${maxRooms} rooms`,
    );
  },

  kicked(roomId: string): ProtocolError {
    return new ProtocolError(ErrorCode.Kicked, `You were removed from ${roomId}; try later`);
  },

  invalidPassword(): ProtocolError {
    return new ProtocolError(ErrorCode.InvalidPassword, 'Wrong or missing room password');
  },

  roomFull(): ProtocolError {
    return new ProtocolError(ErrorCode.RoomFull, 'Room is full');
  },

  /** An actor that is no member (`role` undefined), or holds less than `minRole`. */
  actorRefused(roomId: string, role: Role | undefined, minRole: Role): ProtocolError {
    if (role === undefined) {
      return ProtocolError.notInRoom(roomId);
    }
    return ProtocolError.forbidden(`This action needs the ${minRole} role; you are ${role}`);
  },
};

/**
 * Throws unless `role` (undefined: not a member) is at least `minRole`: NOT_IN_ROOM, FORBIDDEN.
 * The gateway's early check and both stores' checks at commit word it the same.
 */
export function assertRoleAtLeast(roomId: string, role: Role | undefined, minRole: Role): void {
  if (role === undefined || ROLE_RANK[role] < ROLE_RANK[minRole]) {
    throw RoomErrors.actorRefused(roomId, role, minRole);
  }
}

/** The lower of two roles; `cap` undefined means no cap. */
export function cappedRole(role: Role, cap: Role | undefined): Role {
  return cap !== undefined && ROLE_RANK[role] > ROLE_RANK[cap] ? cap : role;
}
