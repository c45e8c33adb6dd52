import { runInNewContext } from 'node:vm';
import { SPIN_SOURCE, startBusyTenant } from './busy-tenant.js';
import { parseOptions, UsageError } from './options.js';

interface Cycle {
  busyMs: number;
  idleMs: number;
}

/**
 * The tenant's own source, run for `count` periods on a fake clock that each read moves on 1 ms:
 * what it would do on a machine of its own, which a real process on a shared one cannot show.
 */
function cyclesOf(percent: number, count: number): Cycle[] {
  let now = 0;
  let firstRead: number | undefined;
  let wake: (() => void) | undefined;
  const cycles: Cycle[] = [];
  runInNewContext(SPIN_SOURCE(percent), {
    Date: {
      now: () => {
        now += 1;
        firstRead ??= now;
        return now;
      },
    },
    setTimeout: (callback: () => void, ms: number) => {
      cycles.push({ busyMs: now - (firstRead ?? now), idleMs: ms });
      firstRead = undefined;
      now += ms;
      wake = callback;
    },
  });
  while (cycles.length < count && wake) {
    const next = wake;
    wake = undefined;
    next();
  }
  return cycles;
}

describe('--busy-tenant', () => {
  it('takes 0 to 90 % of a core', () => {
    expect(parseOptions(['--busy-tenant', '40'])?.busyTenantPercent).toBe(40);
    expect(parseOptions([])?.busyTenantPercent).toBe(0);
    expect(() => parseOptions(['--busy-tenant', '95'])).toThrow(UsageError);
    expect(() => parseOptions(['--busy-tenant', '12.5'])).toThrow(UsageError);
  });

  it.each([1, 50, 90])('spins %i ms of every 100 ms period and sleeps the rest', (percent) => {
    expect(cyclesOf(percent, 5)).toEqual(Array(5).fill({ busyMs: percent, idleMs: 100 - percent }));
  });

  it('is gone once stopped', async () => {
    const tenant = startBusyTenant(50);
    tenant.stop();
    const timeout = new Promise<'still running'>((resolve) => {
      setTimeout(resolve, 3000, 'still running').unref();
    });
    const outcome = await Promise.race([tenant.exited, timeout]);
    if (outcome === 'still running') {
      // A stop that does not work must not leave a core spinning, and jest waiting on it.
      process.kill(tenant.pid, 'SIGKILL');
    }
    expect(outcome).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
