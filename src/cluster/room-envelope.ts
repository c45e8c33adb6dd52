import type { ServerEvent, ServerMessage } from '../protocol/protocol.js';
import { NUMBERING_LUA } from './lua/numbering.js';

/**
 * What travels on a room's Redis channel: one room event for the members connected to other
 * instances (and to this one: see the bus). `message` never carries a `requestId`: the actor's
 * reply, which does, is sent by the instance that handled the request.
 */
export interface RoomEnvelope<E extends ServerEvent = ServerEvent> {
  /** The instance that published it. */
  origin: string;
  /** The member that must not get it (usually the actor), or null. */
  except: string | null;
  /** The single target of a direct message, or null for every member. */
  to: string | null;
  /** A committed state update: the actor's requestId, for its reply on the origin instance. */
  requestId?: string;
  /** A committed state update: its id on the origin instance (CommitReplies). */
  commitId?: string;
  /**
   * With resume on: the origin's id of an event it delivers to its own members only once Redis
   * numbered it (their copy needs the `seq`), when the echo comes back.
   */
  awaitId?: string;
  message: ServerMessage<E>;
  /** A pose's: the sender's slot in the room, for members here on the binary pose channel. */
  slot?: number;
  /**
   * The room's envelope number (every envelope but throwaway ones): consecutive on the room's
   * channel, so a gap means this instance missed one. Written by Redis (NUMBERED_ENVELOPE_LUA).
   */
  seq?: number;
}

/**
 * Publishes an envelope (KEYS[1] the room's `envseq` counter, KEYS[2] its epoch, KEYS[3] its
 * history stream, KEYS[4] its meta; ARGV[1] the channel, ARGV[2] the envelope JSON, ARGV[3] `1`
 * for a deleted room's `room_deleted`) with the room's next number as `seq`, counted by Redis so
 * that every instance numbers from one counter (lua/numbering.ts). Nothing is kept of a room that
 * is gone, and its `room_deleted` takes the counter with it; a room created again under the id
 * meanwhile keeps its own.
 */
export const NUMBERED_ENVELOPE_LUA =
  NUMBERING_LUA +
  String.raw`
local gone = redis.call('EXISTS', KEYS[4]) == 0
local seq = number_and_publish(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], gone)
if gone and ARGV[3] == '1' then
  redis.call('UNLINK', KEYS[1])
end
return seq
`;

/** `<prefix>{<roomId>}:envseq`: the counter behind the room's envelope numbers. */
export function envelopeSeqKey(keyPrefix: string, roomId: string): string {
  return `${keyPrefix}{${roomId}}:envseq`;
}

/** `<prefix>{<roomId>}:epoch`: the name of the room's current history. */
export function historyEpochKey(keyPrefix: string, roomId: string): string {
  return `${keyPrefix}{${roomId}}:epoch`;
}

/**
 * `<prefix>{<roomId>}:joined`: member id -> "<epoch> <seq>" of its latest join's snapshot, so
 * that a resume from before it gets a snapshot. Goes with the room (lua/delete-room.ts).
 */
export function historyJoinedKey(keyPrefix: string, roomId: string): string {
  return `${keyPrefix}{${roomId}}:joined`;
}

/** `<prefix>{<roomId>}:history`: the room's recent numbered envelopes, a stream. */
export function historyKey(keyPrefix: string, roomId: string): string {
  return `${keyPrefix}{${roomId}}:history`;
}

/** `<prefix>{<roomId>}:events`: the room's hash tag, like its keys (redis-keys.ts). */
export function roomChannel(keyPrefix: string, roomId: string): string {
  return `${keyPrefix}{${roomId}}:events`;
}

/** The room id of a channel made by `roomChannel`, or undefined for any other channel. */
export function roomIdOfChannel(keyPrefix: string, channel: string): string | undefined {
  if (!channel.startsWith(`${keyPrefix}{`) || !channel.endsWith('}:events')) {
    return undefined;
  }
  return channel.slice(keyPrefix.length + 1, -'}:events'.length);
}

export function encodeEnvelope(envelope: RoomEnvelope): string {
  return JSON.stringify(envelope);
}

/** Trusts the publisher (another instance of this server): no validation beyond the shape. */
export function decodeEnvelope(payload: string): RoomEnvelope {
  const envelope = JSON.parse(payload) as Partial<RoomEnvelope>;
  if (typeof envelope.origin !== 'string' || typeof envelope.message?.event !== 'string') {
    throw new Error('Not a room envelope');
  }
  return {
    origin: envelope.origin,
    except: envelope.except ?? null,
    to: envelope.to ?? null,
    ...(typeof envelope.requestId === 'string' ? { requestId: envelope.requestId } : {}),
    ...(typeof envelope.seq === 'number' ? { seq: envelope.seq } : {}),
    ...(typeof envelope.commitId === 'string' ? { commitId: envelope.commitId } : {}),
    ...(typeof envelope.awaitId === 'string' ? { awaitId: envelope.awaitId } : {}),
    ...(typeof envelope.slot === 'number' ? { slot: envelope.slot } : {}),
    message: envelope.message,
  };
}

/** The event with the `seq` Redis gave its envelope, as clients that resume count them. */
export function withSeq(message: ServerMessage, seq: number): ServerMessage {
  return { event: message.event, data: { ...message.data, seq } } as ServerMessage;
}
