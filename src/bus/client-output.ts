import type { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import type { ClientLink, EnqueueResult, OutputLimits, QueuedFrame } from '../users/client-link.js';

export type { EnqueueResult, OutputLimits } from '../users/client-link.js';

/**
 * The most a turn's frames for one socket are joined into one buffer for; past it (large state
 * snapshots) each frame is its own chunk, so no large copy is made.
 */
const JOINED_WRITE_MAX_BYTES = 64 * 1024;

/**
 * Where a turn's frames are joined, shared by every socket's output. A write the kernel takes
 * whole is done with its buffer before write() returns, so the next socket's frames reuse it; a
 * write that leaves bytes behind keeps it (the stream sends the rest from it later), and the next
 * join takes a fresh one. So joining allocates nothing while the clients keep up. A socket that
 * falls behind keeps at most one such buffer (JOINED_WRITE_MAX_BYTES, beyond the bytes the output
 * limits count): once it has a backlog its frames go out as they are, until it has caught up.
 */
let joinBuffer: Buffer | undefined;

/**
 * One client's outgoing frames for the current event-loop turn. Frames are written once per turn,
 * all in one write (one syscall however many frames are due), urgent frames first, so
 * state, membership and chat never wait behind queued pose updates.
 *
 * Frames go to the TCP socket the WebSocket runs on (the upgrade request's socket, a public
 * handle), already framed. A socket that negotiated permessage-deflate goes through `ws` instead,
 * which compresses per socket.
 */
export class ClientOutput implements ClientLink {
  private urgent: QueuedFrame[] = [];
  private throwaway: QueuedFrame[] = [];
  private queuedBytes = 0;
  /** Set once the client is being disconnected: nothing more is queued for it. */
  private closed = false;
  /** Extensions are settled before the connection is handed over, so this is decided once. */
  private readonly direct: boolean;
  /**
   * Direct sockets: the bytes the kernel had not taken right after this output's last write, -1
   * before the first. While it is 0, what is pending is only what is queued here: nothing but
   * our writes adds to the socket's buffer (ws's own control frames aside, a few bytes, seen at
   * the next write), so a fan-out need not read the socket's stream state, which for a socket
   * not written since the last tick is a cache miss or two per recipient.
   */
  private backlogAfterWrite = -1;

  constructor(
    private readonly socket: WebSocket,
    private readonly transport: Writable | undefined,
  ) {
    this.direct = transport !== undefined && socket.extensions === '';
  }

  /** Bytes queued here and not yet taken by the kernel. */
  pendingBytes(): number {
    if (this.backlogAfterWrite === 0) {
      return this.queuedBytes;
    }
    const written = this.direct ? this.transport!.writableLength : this.socket.bufferedAmount;
    return this.queuedBytes + written;
  }

  hasQueued(): boolean {
    return this.queuedBytes > 0;
  }

  enqueue(frame: QueuedFrame, limits: OutputLimits): EnqueueResult {
    if (this.closed) {
      return 'closed';
    }
    const size = frame.bytes.length;
    const pending = this.pendingBytes();
    if (frame.throwaway) {
      if (pending + size > limits.softBytes) {
        return 'dropped';
      }
      this.throwaway.push(frame);
    } else {
      if (pending + size > limits.maxBytes) {
        return 'overflow';
      }
      this.urgent.push(frame);
    }
    this.queuedBytes += size;
    return 'queued';
  }

  /** Writes everything queued, urgent first; skipped once the socket is no longer open. */
  flush(): void {
    if (this.queuedBytes === 0) {
      return;
    }
    if (!this.closed && this.socket.readyState === WebSocket.OPEN) {
      if (this.direct) {
        this.writeDirect();
      } else {
        this.writeThroughWs();
      }
    }
    this.clearQueues();
  }

  /** Stops queuing and drops what is queued: the client is being disconnected. */
  discard(): void {
    this.closed = true;
    this.clearQueues();
  }

  /**
   * Fresh arrays rather than `length = 0`: V8 sets an array's length through a runtime call,
   * which at tens of thousands of writes a second cost more than the new arrays.
   */
  private clearQueues(): void {
    if (this.urgent.length > 0) {
      this.urgent = [];
    }
    if (this.throwaway.length > 0) {
      this.throwaway = [];
    }
    this.queuedBytes = 0;
  }

  isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  terminate(): void {
    this.socket.terminate();
  }

  ping(): void {
    this.socket.ping();
  }

  onPong(listener: () => void): void {
    this.socket.on('pong', () => listener());
  }

  onClose(listener: () => void): void {
    if (this.socket.readyState === WebSocket.CLOSED) {
      listener();
      return;
    }
    this.socket.once('close', () => listener());
  }

  private writeDirect(): void {
    const transport = this.transport!;
    // One frame (with server ticks, a member's whole turn): written as it is.
    if (this.urgent.length + this.throwaway.length === 1) {
      transport.write((this.urgent[0] ?? this.throwaway[0]).bytes);
    } else if (this.queuedBytes <= JOINED_WRITE_MAX_BYTES && transport.writableLength === 0) {
      this.writeJoined(transport);
    } else {
      this.writeCorked(transport);
    }
    // A write the kernel took whole completes at once: the stream then holds nothing.
    this.backlogAfterWrite = transport.writableLength;
  }

  /**
   * The turn's frames copied into one buffer, urgent first, in one write. The stream's bookkeeping
   * per written chunk (an entry queued, a chunk array, an iovec) costs more than copying a pose's
   * few hundred bytes: at 1,000 JSON users a turn holds about a hundred frames per member. Only
   * for a socket with nothing pending, whose write the kernel most likely takes at once.
   */
  private writeJoined(transport: Writable): void {
    const buffer = joinBuffer ?? Buffer.allocUnsafeSlow(JOINED_WRITE_MAX_BYTES);
    joinBuffer = undefined;
    let at = 0;
    for (const frame of this.urgent) {
      buffer.set(frame.bytes, at);
      at += frame.bytes.length;
    }
    for (const frame of this.throwaway) {
      buffer.set(frame.bytes, at);
      at += frame.bytes.length;
    }
    transport.write(buffer.subarray(0, at));
    if (transport.writableLength === 0) {
      joinBuffer = buffer;
    }
  }

  /**
   * Each frame its own chunk of one writev: a socket that is behind holds on to the frames it is
   * still to send, and these are the ones its room shares, not a copy per member.
   */
  private writeCorked(transport: Writable): void {
    transport.cork();
    for (const frame of this.urgent) {
      transport.write(frame.bytes);
    }
    for (const frame of this.throwaway) {
      transport.write(frame.bytes);
    }
    transport.uncork();
  }

  private writeThroughWs(): void {
    for (const frame of this.urgent) {
      this.socket.send(frame.binary ?? frame.json);
    }
    for (const frame of this.throwaway) {
      this.socket.send(frame.binary ?? frame.json);
    }
  }
}
