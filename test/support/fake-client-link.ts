import type { ClientLink } from '../../src/users/client-link.js';

/**
 * A ClientLink for unit specs: it queues and writes nothing, is open, and ignores closes, unless
 * `overrides` says otherwise (a spec that watches closes routes them to its fake socket).
 */
export function fakeClientLink(overrides: Partial<ClientLink> = {}): ClientLink {
  return {
    pendingBytes: () => 0,
    hasQueued: () => false,
    enqueue: () => 'queued',
    flush: () => undefined,
    discard: () => undefined,
    isOpen: () => true,
    close: () => undefined,
    terminate: () => undefined,
    ping: () => undefined,
    onPong: () => undefined,
    onClose: () => undefined,
    ...overrides,
  };
}
