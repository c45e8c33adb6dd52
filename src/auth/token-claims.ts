import type { JWTPayload } from 'jose';
import { ID_PATTERN, ROLES, type Role } from '../protocol/protocol.js';
import { InvalidTokenError } from './invalid-token.error.js';

/** What a verified token says about its holder, checked and typed. */
export interface TokenClaims {
  /** `sub`: the userId. */
  userId: string;
  name?: string;
  /** `rooms`: the highest role per room; a null-prototype object, so any room id is safe. */
  roomRoles?: Readonly<Record<string, Role>>;
  mayCreateRooms: boolean;
  admin: boolean;
  /** `exp` in ms since the epoch. */
  expiresAt?: number;
}

const MAX_NAME_LENGTH = 64;

/** Checks the claims we use; a malformed one refuses the whole token with a message naming it. */
export function parseClaims(payload: JWTPayload): TokenClaims {
  const { sub, name, rooms, createRooms, admin, exp } = payload;
  if (typeof sub !== 'string' || !ID_PATTERN.test(sub)) {
    throw new InvalidTokenError('the "sub" claim must be 1-64 characters of [A-Za-z0-9._-]');
  }
  if (
    name !== undefined &&
    (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH)
  ) {
    throw new InvalidTokenError(
      `the "name" claim must be a string of 1-${MAX_NAME_LENGTH} characters`,
    );
  }
  if (createRooms !== undefined && typeof createRooms !== 'boolean') {
    throw new InvalidTokenError('the "createRooms" claim must be true or false');
  }
  if (admin !== undefined && typeof admin !== 'boolean') {
    throw new InvalidTokenError('the "admin" claim must be true or false');
  }
  return {
    userId: sub,
    ...(name !== undefined ? { name } : {}),
    ...(rooms !== undefined ? { roomRoles: parseRooms(rooms) } : {}),
    mayCreateRooms: createRooms !== false,
    admin: admin === true,
    // jose has already checked that exp, when present, is a number in the future.
    ...(typeof exp === 'number' ? { expiresAt: exp * 1000 } : {}),
  };
}

function parseRooms(rooms: unknown): Readonly<Record<string, Role>> {
  const invalid = () =>
    new InvalidTokenError(
      'the "rooms" claim must map room ids (1-64 characters of [A-Za-z0-9._-]) to ' +
        ROLES.map((role) => `"${role}"`).join(', '),
    );
  if (typeof rooms !== 'object' || rooms === null || Array.isArray(rooms)) {
    throw invalid();
  }
  const roles = Object.create(null) as Record<string, Role>;
  for (const [roomId, role] of Object.entries(rooms)) {
    if (!ID_PATTERN.test(roomId) || !(ROLES as readonly unknown[]).includes(role)) {
      throw invalid();
    }
    roles[roomId] = role as Role;
  }
  return Object.freeze(roles);
}
