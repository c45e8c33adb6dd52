import type { Avatar, Role, RoomUser } from '../protocol/protocol.js';
import { SLOT_COUNT } from '../rooms/room-store.js';

/** What a member record keeps besides the role, as JSON. */
interface MemberProfile {
  id: string;
  name: string;
  avatar?: Avatar;
  connected: boolean;
  lastSeen: number;
}

/** A member record without its role and instance: the JSON the join script stores. */
export function encodeProfile(user: Omit<RoomUser, 'role'>): string {
  const profile: MemberProfile = {
    id: user.id,
    name: user.name,
    ...(user.avatar ? { avatar: user.avatar } : {}),
    connected: user.connected,
    lastSeen: user.lastSeen,
  };
  return JSON.stringify(profile);
}

export interface MemberRecord {
  user: RoomUser;
  instanceId: string;
}

/** Reads `<role>\n<instanceId>\n<profile JSON>` (see redis-keys.ts). */
export function decodeMember(record: string): MemberRecord {
  const roleEnd = record.indexOf('\n');
  const instanceEnd = record.indexOf('\n', roleEnd + 1);
  if (roleEnd < 0 || instanceEnd < 0) {
    throw new Error(`Malformed member record: ${JSON.stringify(record.slice(0, 80))}`);
  }
  const profile = JSON.parse(record.slice(instanceEnd + 1)) as MemberProfile;
  return {
    user: {
      id: profile.id,
      name: profile.name,
      role: record.slice(0, roleEnd) as Role,
      ...(profile.avatar ? { avatar: profile.avatar } : {}),
      connected: profile.connected,
      lastSeen: profile.lastSeen,
    },
    instanceId: record.slice(roleEnd + 1, instanceEnd),
  };
}

/**
 * A member's slot (docs/binary-poses.md): its join number in the room, wrapped to a u16. The join
 * script picks join numbers whose slot no member holds.
 */
export function slotOf(joinNumber: number): number {
  return joinNumber % SLOT_COUNT;
}
