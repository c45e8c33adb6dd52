/** A listener slot loose enough that the browser's WebSocket and the `ws` package's both fit. */
type Listener<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** The part of the standard WebSocket API the SDK uses. */
export interface SocketLike {
  readonly readyState: number;
  /** The subprotocol the server chose ('' or undefined before the handshake or without one). */
  readonly protocol?: string;
  /** Set to 'arraybuffer' with binaryPoses, so binary frames arrive as ArrayBuffers. */
  binaryType?: string;
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: Listener<unknown> | null;
  onmessage: Listener<{ data: unknown }> | null;
  onclose: Listener<{ code: number; reason: string }> | null;
  onerror: Listener<unknown> | null;
}

/** `globalThis.WebSocket` in browsers and Node 22; `ws`'s `WebSocket` on Node 20. */
export type SocketConstructor = new (url: string, protocols?: string[]) => SocketLike;

/** Timers behind an interface, so that tests drive reconnects and timeouts with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
};
