import type { Role } from '../protocol/protocol.js';

/**
 * Who a connection is, decided once at the upgrade. With AUTH_MODE=jwt every field comes from
 * the verified token; otherwise the userId is whatever the client declared (or generated).
 */
export interface Identity {
  /** Absent when the client declared none (AUTH_MODE none or api-key): the gateway makes one. */
  userId?: string;
  /** true only when a verified token vouches for userId (AUTH_MODE=jwt). */
  verified: boolean;
  /** The token's `name` claim: the default display name on join. */
  name?: string;
  /** The token's `rooms` claim: the highest role this user may hold in each listed room. */
  roomRoles?: Readonly<Record<string, Role>>;
  /** false when the token says `createRooms: false`. */
  mayCreateRooms: boolean;
  /** The token's `admin` claim (true), or the API key on an HTTP request. */
  admin: boolean;
  /** The token's `exp`, in ms since the epoch. */
  expiresAt?: number;
  /** The client's address (see clientAddressOf): per-IP quotas key on it. */
  address: string;
}

/** The token's cap on the user's role in `roomId`, if its `rooms` claim lists the room. */
export function roleCapOf(identity: Identity, roomId: string): Role | undefined {
  const roles = identity.roomRoles;
  return roles !== undefined && Object.hasOwn(roles, roomId) ? roles[roomId] : undefined;
}
