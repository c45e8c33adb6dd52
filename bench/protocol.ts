// The few frames the simulated users send and recognize. The bench talks to the server as an
// outside client would, by the wire strings of the README, so it does not import the server's code.

export const ROOM_PREFIX = 'bench-';
export const JOIN_REQUEST_ID = 'j';

export function roomIdOf(roomIndex: number): string {
  return `${ROOM_PREFIX}${roomIndex}`;
}

export function userIdOf(roomIndex: number, userIndex: number): string {
  return `${ROOM_PREFIX}${roomIndex}-${userIndex}`;
}

export function connectUrl(baseUrl: string, userId: string): string {
  const url = new URL(baseUrl);
  url.searchParams.set('userId', userId);
  return url.toString();
}

export function joinRoomFrame(roomId: string, requestId: string, name: string): string {
  return JSON.stringify({ action: 'join_room', roomId, requestId, userInfo: { name } });
}

export function leaveRoomFrame(roomId: string, requestId: string): string {
  return JSON.stringify({ action: 'leave_room', roomId, requestId });
}

export function updateStateFrame(
  roomId: string,
  baseVersion: number,
  tick: number,
  requestId: string,
): string {
  // sessionSettings is one of the four sections a patch may replace (README, update_state).
  return JSON.stringify({
    action: 'update_state',
    roomId,
    baseVersion,
    patch: { sessionSettings: { tick } },
    requestId,
  });
}

/**
 * Builds pose broadcasts for one room by string concatenation: a simulated user sends one every
 * 1000/hz ms, and JSON.stringify of a fresh object each time would cost the generator more than
 * the frame is worth.
 */
export class PoseFrames {
  private readonly head: string;

  constructor(roomId: string) {
    this.head = `{"action":"broadcast","roomId":"${roomId}","message":{"type":"pose_update","timestamp":`;
  }

  build(timestampMs: number, step: number): string {
    const angle = step / 33;
    const x = Math.round(Math.cos(angle) * 1000) / 1000;
    const z = Math.round(Math.sin(angle) * 1000) / 1000;
    return `${this.head}${timestampMs},"data":{"position":[${x},1.7,${z}],"rotation":[0,0,0,1]}}}`;
  }
}

/**
 * Recognizes the relayed pose frames of one room by their first bytes, without decoding them.
 * Both servers serialize `{event, data: {roomId, message, senderId}}` with the message as sent,
 * so every pose starts with the same bytes. A server that orders the keys differently only
 * costs the generator a JSON.parse per frame (counted as parsed frames); nothing is miscounted.
 */
export class PoseFrameMatcher {
  private readonly prefix: Buffer;

  constructor(roomId: string) {
    this.prefix = Buffer.from(
      `{"event":"message","data":{"roomId":"${roomId}","message":{"type":"pose_update"`,
    );
  }

  matches(frame: Buffer): boolean {
    const length = this.prefix.length;
    return frame.length > length && frame.compare(this.prefix, 0, length, 0, length) === 0;
  }
}

const TIMESTAMP_KEY = Buffer.from('"timestamp":');

/** The pose's message.timestamp, read from the bytes without parsing the whole frame. */
export function poseTimestampOf(frame: Buffer): number {
  const at = frame.indexOf(TIMESTAMP_KEY);
  if (at < 0) {
    return Number.NaN;
  }
  const start = at + TIMESTAMP_KEY.length;
  return Number.parseFloat(frame.toString('latin1', start, start + 32));
}

/** A decoded server event: only the fields the bench looks at. */
export interface ServerFrame {
  event?: string;
  data?: {
    requestId?: string;
    code?: string;
    message?: unknown;
    currentVersion?: number;
    version?: number;
    userId?: string;
    updatedBy?: string;
    /** slot: --binary (gallery.v2) only. */
    user?: { id?: string; slot?: unknown };
    roomInfo?: {
      roomId?: string;
      state?: { version?: number };
      users?: { id?: unknown; slot?: unknown }[];
    };
    users?: { id?: unknown; slot?: unknown }[];
  };
}

export function parseServerFrame(frame: Buffer | string): ServerFrame | undefined {
  try {
    const parsed: unknown = JSON.parse(typeof frame === 'string' ? frame : frame.toString());
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** A pose seen through a full parse (the slow path). */
export function isPoseEvent(frame: ServerFrame): boolean {
  const message = frame.data?.message;
  return (
    frame.event === 'message' &&
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'pose_update'
  );
}

export function timestampOfPoseEvent(frame: ServerFrame): number {
  const timestamp = (frame.data?.message as { timestamp?: unknown } | undefined)?.timestamp;
  return typeof timestamp === 'number' ? timestamp : Number.NaN;
}
