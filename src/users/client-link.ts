/** A server event serialized once, ready for any number of clients (bus/outgoing-frame.ts). */
export interface QueuedFrame {
  /** The JSON text. */
  readonly json: string;
  /** The complete WebSocket frame. */
  readonly bytes: Uint8Array;
  /** A binary frame's payload (then `json` is empty), for sockets written through `ws`. */
  readonly binary?: Uint8Array;
  /** Throwaway traffic (pose updates): dropped for a client that cannot keep up. */
  readonly throwaway: boolean;
  /** What it is, for the sent-messages metric (MessageKind); unset counts as control. */
  readonly kind?: number;
}

export interface OutputLimits {
  /** Above this many pending bytes, throwaway frames are dropped. */
  readonly softBytes: number;
  /** Above this many pending bytes, the client is too slow and is disconnected. */
  readonly maxBytes: number;
}

/** `closed`: the client is being disconnected and takes nothing more. */
export type EnqueueResult = 'queued' | 'dropped' | 'overflow' | 'closed';

/**
 * How this instance reaches one client: its outgoing queue and the controls of its socket. The
 * transport implements it (bus/client-output.ts over `ws`); nothing in users/, rooms/ or state/
 * knows what a socket is.
 */
export interface ClientLink {
  /** Bytes queued and not yet taken by the kernel. */
  pendingBytes(): number;
  hasQueued(): boolean;
  enqueue(frame: QueuedFrame, limits: OutputLimits): EnqueueResult;
  /** Writes everything queued. */
  flush(): void;
  /** Stops queuing and drops what is queued: the client is being disconnected. */
  discard(): void;
  /** False once the socket is closing or closed. */
  isOpen(): boolean;
  /** Starts the closing handshake (what is queued and not flushed is not sent). */
  close(code: number, reason: string): void;
  /** Destroys the socket at once. */
  terminate(): void;
  /** A heartbeat probe; the answer calls the onPong listener. */
  ping(): void;
  /** Calls `listener` on every answer to a ping. */
  onPong(listener: () => void): void;
  /** Calls `listener` once the socket has closed (at once if it already has). */
  onClose(listener: () => void): void;
}
