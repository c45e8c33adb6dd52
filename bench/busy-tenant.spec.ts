import { existsSync } from 'node:fs';
import { startBusyTenant } from './busy-tenant.js';
import { parseOptions, UsageError } from './options.js';
import { CpuWindow } from './proc-stats.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function gone(pid: number): Promise<boolean> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (!existsSync(`/proc/${pid}`)) {
      return true;
    }
    await sleep(20);
  }
  return false;
}

describe('--busy-tenant', () => {
  it('takes 0 to 90 % of a core', () => {
    expect(parseOptions(['--busy-tenant', '40'])?.busyTenantPercent).toBe(40);
    expect(parseOptions([])?.busyTenantPercent).toBe(0);
    expect(() => parseOptions(['--busy-tenant', '95'])).toThrow(UsageError);
    expect(() => parseOptions(['--busy-tenant', '12.5'])).toThrow(UsageError);
  });

  it('keeps one core busy about the share asked for, and is gone once stopped', async () => {
    const tenant = startBusyTenant(50);
    try {
      await sleep(300); // the process starts
      const cpu = new CpuWindow(tenant.pid);
      await sleep(1500);
      // Wide bounds: the machine running the tests may be busy itself.
      expect(cpu.percent()).toBeGreaterThan(20);
      expect(cpu.percent()).toBeLessThan(80);
    } finally {
      tenant.stop();
    }
    expect(await gone(tenant.pid)).toBe(true);
  });
});
