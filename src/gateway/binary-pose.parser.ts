import { readClientPose } from '../protocol/binary-poses.js';
import { ClientAction, ErrorCode } from '../protocol/protocol.js';
import type { ParsedFrame } from './client-frame.parser.js';

/**
 * A binary frame of a client on the binary pose channel (docs/binary-poses.md), read as the
 * `broadcast` it stands for, so it takes the JSON pose's path from here on: budget, shedding,
 * membership check, relay. A frame off the layout is refused like malformed JSON (INVALID_MESSAGE,
 * counted towards closing the connection).
 */
export function parseBinaryPose(data: Buffer, senderId: string): ParsedFrame {
  const pose = readClientPose(data, senderId);
  if (typeof pose === 'string') {
    return {
      rejected: true,
      rejection: { code: ErrorCode.InvalidMessage, message: pose, abusive: true },
    };
  }
  return {
    rejected: false,
    action: ClientAction.Broadcast,
    message: { action: ClientAction.Broadcast, roomId: pose.roomId, message: pose.message },
  };
}
