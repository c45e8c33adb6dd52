import type { QueuedFrame } from './client-link.js';
import type { Connection } from './connection.js';

/** An event that reached a connection while its join was still being answered. */
export interface BufferedEvent {
  readonly event: string;
  readonly data: unknown;
  readonly frame: QueuedFrame;
}

interface LocalRoom {
  readonly members: Set<Connection>;
  /** Joins in flight: events are held back until the joiner has its `room_joined`. */
  readonly pending: Map<Connection, BufferedEvent[]>;
  /**
   * How many joins of each pending connection are in flight: a `join_room` can race the session
   * takeover's join of the same room, and one giving up must not cancel the other.
   */
  readonly joins: Map<Connection, number>;
}

/**
 * Which local connections receive the events of which room. A join registers as pending before
 * the store takes its snapshot, so no event published around the snapshot can be missed; the
 * joiner then gets `room_joined` first and the held-back events after it.
 */
export class LocalMembership {
  private readonly rooms = new Map<string, LocalRoom>();
  /**
   * Counts every change of who is a member of which room here, so a list of a room's members
   * taken earlier can tell whether it is still good with one comparison (LocalDelivery).
   */
  private changes = 0;
  /** Told when a room has no local member or joiner left (a clustered bus unsubscribes then). */
  onRoomUnused: (roomId: string) => void = () => undefined;

  members(roomId: string): ReadonlySet<Connection> | undefined {
    return this.rooms.get(roomId)?.members;
  }

  /** Changes with every join completed, leave and takeover here. */
  revision(): number {
    return this.changes;
  }

  pending(roomId: string): ReadonlyMap<Connection, BufferedEvent[]> | undefined {
    const room = this.rooms.get(roomId);
    return room && room.pending.size > 0 ? room.pending : undefined;
  }

  isMember(connection: Connection, roomId: string): boolean {
    return connection.rooms.has(roomId);
  }

  beginJoin(connection: Connection, roomId: string): void {
    if (connection.rooms.has(roomId)) {
      return;
    }
    const room = this.roomEntry(roomId);
    if (!room.pending.has(connection)) {
      room.pending.set(connection, []);
    }
    room.joins.set(connection, (room.joins.get(connection) ?? 0) + 1);
  }

  /**
   * Makes the join effective and returns what was held back while it was pending.
   * @param snapshotVersion the state version of the snapshot the joiner was sent, when it was.
   */
  completeJoin(connection: Connection, roomId: string, snapshotVersion?: number): BufferedEvent[] {
    if (snapshotVersion !== undefined) {
      connection.stateVersions.set(roomId, snapshotVersion);
    }
    const room = this.roomEntry(roomId);
    const buffered = room.pending.get(connection) ?? [];
    room.pending.delete(connection);
    room.joins.delete(connection);
    room.members.add(connection);
    connection.rooms.add(roomId);
    this.changes++;
    return buffered;
  }

  /**
   * Whether a `state_updated` of this version is news to the connection, and if so records it.
   * With Redis, the snapshot of a join and the events published just before it travel on two
   * connections with no order between them, so an update the snapshot already holds can still
   * arrive after the join: it is not delivered twice.
   */
  admitsStateVersion(connection: Connection, roomId: string, version: number): boolean {
    const seen = connection.stateVersions.get(roomId);
    if (seen !== undefined && version <= seen) {
      return false;
    }
    connection.stateVersions.set(roomId, version);
    return true;
  }

  abortJoin(connection: Connection, roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room) {
      return;
    }
    const joins = (room.joins.get(connection) ?? 1) - 1;
    if (joins > 0) {
      room.joins.set(connection, joins); // another join of it is still in flight
      return;
    }
    room.joins.delete(connection);
    room.pending.delete(connection);
    this.dropIfEmpty(roomId, room);
  }

  remove(connection: Connection, roomId: string): boolean {
    const room = this.rooms.get(roomId);
    this.changes++;
    connection.rooms.delete(roomId);
    connection.profiles.delete(roomId);
    connection.stateVersions.delete(roomId);
    if (!room) {
      return false;
    }
    const removed = room.members.delete(connection);
    room.pending.delete(connection);
    room.joins.delete(connection);
    this.dropIfEmpty(roomId, room);
    return removed;
  }

  /** Drops every local member of a room (the room was deleted) and returns them. */
  removeRoom(roomId: string): Connection[] {
    const room = this.rooms.get(roomId);
    if (!room) {
      return [];
    }
    this.rooms.delete(roomId);
    this.changes++;
    const dropped = [...room.members, ...room.pending.keys()];
    for (const connection of dropped) {
      connection.rooms.delete(roomId);
      connection.profiles.delete(roomId);
      connection.stateVersions.delete(roomId);
    }
    this.onRoomUnused(roomId);
    return dropped;
  }

  /** Session replacement: the new socket takes over the old one's rooms. */
  transfer(from: Connection, to: Connection): void {
    this.changes++;
    for (const roomId of from.rooms) {
      const room = this.rooms.get(roomId);
      if (!room) {
        continue;
      }
      room.members.delete(from);
      room.members.add(to);
      to.rooms.add(roomId);
      const profile = from.profiles.get(roomId);
      if (profile) {
        to.profiles.set(roomId, profile);
      }
      const version = from.stateVersions.get(roomId);
      if (version !== undefined) {
        to.stateVersions.set(roomId, version);
      }
    }
    from.rooms.clear();
    from.profiles.clear();
    from.stateVersions.clear();
  }

  roomCount(): number {
    return this.rooms.size;
  }

  private roomEntry(roomId: string): LocalRoom {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = { members: new Set(), pending: new Map(), joins: new Map() };
      this.rooms.set(roomId, room);
    }
    return room;
  }

  private dropIfEmpty(roomId: string, room: LocalRoom): void {
    if (room.members.size === 0 && room.pending.size === 0) {
      this.rooms.delete(roomId);
      this.onRoomUnused(roomId);
    }
  }
}
