// --busy-tenant: another process on the machine, busy a fixed share of one core, so that servers
// can be compared under the same contention. Without it, how busy a shared or virtual machine is
// decides results by the hour (at 20x50 binary with ticks: 0.89-1.00 delivered on one day).
import { spawn, type ChildProcess } from 'node:child_process';

/** Busy `percent` ms of every period: bursts, as a busy neighbour's work comes, not one stall. */
const PERIOD_MS = 100;

/** Spins for `busy` ms, sleeps the rest of the period, until killed. Exported for its test. */
export const SPIN_SOURCE = (busyMs: number): string =>
  `const busy = ${busyMs}, period = ${PERIOD_MS};` +
  'function spin() { const start = Date.now(); while (Date.now() - start < busy) {}' +
  ' setTimeout(spin, period - busy); }' +
  'spin();';

export interface BusyTenant {
  readonly pid: number;
  /** Settles when the tenant process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): void;
}

/** Starts the tenant: one process keeping one core busy `percent`% of the time (1-90). */
export function startBusyTenant(percent: number): BusyTenant {
  const child: ChildProcess = spawn(process.execPath, ['-e', SPIN_SOURCE(percent)], {
    stdio: 'ignore',
  });
  if (child.pid === undefined) {
    throw new Error('--busy-tenant: could not start the tenant process');
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // Whatever happens, the tenant does not outlive the bench.
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', kill);
  return {
    pid: child.pid,
    exited,
    stop: () => {
      process.removeListener('exit', kill);
      kill();
    },
  };
}
