import { WorkGate, type WorkGateLimits, type WorkGateStats } from '../limits/work-gate.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode } from '../protocol/protocol.js';

/**
 * Every scrypt of this process passes here. Each holds one of libuv's threads (4 unless
 * UV_THREADPOOL_SIZE says otherwise) for ~60 ms, and those threads also write the persistent
 * rooms' files: so only a few run at once, and only so many more wait, whoever asks. One gate per
 * process, not per app, because the thread pool is per process. The defaults hold until the boot
 * applies PASSWORD_HASH_CONCURRENCY and PASSWORD_HASH_QUEUE (limitPasswordHashing).
 */
const hashing = new WorkGate(
  { concurrency: 2, queue: 64 },
  () =>
    new ProtocolError(
      ErrorCode.Unavailable,
      'Too many room passwords are being checked right now; try again shortly',
    ),
);

/** Sets how many password hashes run at once in this process, and how many more may wait. */
export function limitPasswordHashing(limits: WorkGateLimits): void {
  hashing.configure(limits);
}

/** The scrypt derivations (hashes and checks) of this process: running, waiting, done, refused. */
export function passwordHashingStats(): WorkGateStats {
  return hashing.stats();
}

/** Runs one scrypt derivation once a place is free; rejects with UNAVAILABLE when none will be. */
export function runPasswordHash<T>(derivation: () => Promise<T>): Promise<T> {
  return hashing.run(derivation);
}
