import { checkClientPose, readClientPose, type ClientPoseEntry } from '../protocol/binary-poses.js';
import { ClientAction, ErrorCode } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import type { ParsedFrame } from './client-frame.parser.js';

/**
 * A pose frame of a client on the binary pose channel that checks out, not decoded: it is relayed
 * as it came (RelayService.broadcastBinaryPose) when its sender is a member of the room, and read
 * as the `broadcast` it stands for (parseBinaryPose) when it needs the handler's answer.
 */
export interface BinaryPose {
  sender: Connection;
  roomId: string;
  frame: Buffer;
  entry: ClientPoseEntry;
}

/** Whether an inbound frame is a binary pose rather than a parsed JSON frame. */
export function isBinaryPose(frame: BinaryPose | ParsedFrame): frame is BinaryPose {
  return (frame as BinaryPose).entry !== undefined;
}

/**
 * A binary frame of `sender`: a pose to relay as it came, or, off the layout, refused like
 * malformed JSON (INVALID_MESSAGE, counted towards closing the connection).
 */
export function readBinaryPose(data: Buffer, sender: Connection): BinaryPose | ParsedFrame {
  const entry = checkClientPose(data, sender.lastPoseRoomId);
  if (typeof entry === 'string') {
    return invalidFrame(entry);
  }
  if (entry.roomId !== sender.lastPoseRoomId) {
    entry.roomId = sender.lastPoseRoomId = memberRoomId(sender, entry.roomId);
  }
  return { sender, roomId: entry.roomId, frame: data, entry };
}

/**
 * The sender's own string for a room it is in (the one its join stored), so that every later
 * pose looks the room up in the server's maps by the very key they hold.
 */
function memberRoomId(sender: Connection, roomId: string): string {
  for (const room of sender.rooms) {
    if (room === roomId) {
      return room;
    }
  }
  return roomId;
}

/**
 * A binary frame read as the `broadcast` it stands for, so it takes the JSON pose's path: for a
 * pose that needs its handler's answer (not a member, say), or when the pose type is not throwaway
 * (EPHEMERAL_MESSAGE_TYPES without it), when it is relayed as any other broadcast.
 */
export function parseBinaryPose(data: Buffer, senderId: string): ParsedFrame {
  const pose = readClientPose(data, senderId);
  if (typeof pose === 'string') {
    return invalidFrame(pose);
  }
  return {
    rejected: false,
    action: ClientAction.Broadcast,
    message: { action: ClientAction.Broadcast, roomId: pose.roomId, message: pose.message },
  };
}

function invalidFrame(reason: string): ParsedFrame {
  return {
    rejected: true,
    // A binary frame stands for a broadcast: refused, it is not logged, as nothing is per pose.
    rejection: {
      code: ErrorCode.InvalidMessage,
      message: reason,
      abusive: true,
      action: ClientAction.Broadcast,
    },
  };
}
