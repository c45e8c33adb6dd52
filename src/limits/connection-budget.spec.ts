import {
  CLIENT_PINGS_BURST,
  CLIENT_PINGS_PER_SEC,
  ConnectionBudget,
  VIOLATION_WINDOW_MS,
  type RateLimits,
} from './connection-budget.js';

const LIMITS: RateLimits = {
  posesPerSec: 60,
  posesBurst: 30,
  actionsPerSec: 20,
  actionsBurst: 40,
  bytesPerSec: 1024 * 1024,
  violationsBeforeClose: 3,
};

const chargeTimes = (budget: ConnectionBudget, n: number, throwaway: boolean, now = 0) =>
  Array.from({ length: n }, () => budget.chargeMessage(throwaway, now));

describe('ConnectionBudget', () => {
  it('lets the pose burst through, then refuses poses but not actions', () => {
    const budget = new ConnectionBudget(LIMITS, 65536, 0);
    expect(chargeTimes(budget, 30, true).every((wait) => wait === 0)).toBe(true);
    expect(budget.chargeMessage(true, 0)).toBeGreaterThan(0);
    expect(budget.chargeMessage(false, 0)).toBe(0);
  });

  it('refuses actions past their burst with the wait for one token (50 ms at 20/s)', () => {
    const budget = new ConnectionBudget(LIMITS, 65536, 0);
    expect(chargeTimes(budget, 40, false).every((wait) => wait === 0)).toBe(true);
    expect(budget.chargeMessage(false, 0)).toBe(50);
    expect(budget.chargeMessage(false, 50)).toBe(0);
  });

  it('sustains the configured pose rate: 60 a second, every second', () => {
    const budget = new ConnectionBudget(LIMITS, 65536, 0);
    chargeTimes(budget, 30, true);
    let accepted = 0;
    for (let t = 0; t < 10_000; t += 10) {
      if (budget.chargeMessage(true, t) === 0) {
        accepted++;
      }
    }
    expect(accepted).toBeGreaterThanOrEqual(599);
    expect(accepted).toBeLessThanOrEqual(601);
  });

  it('charges bytes; one frame of the maximum size always fits when rested', () => {
    const budget = new ConnectionBudget({ ...LIMITS, bytesPerSec: 1000 }, 4096, 0);
    expect(budget.chargeBytes(4096, 0)).toBe(0);
    expect(budget.chargeBytes(10, 0)).toBe(10);
    expect(budget.chargeBytes(4096, 4096)).toBe(0);
  });

  it('turns each bucket off with a rate of 0', () => {
    const budget = new ConnectionBudget(
      { ...LIMITS, posesPerSec: 0, actionsPerSec: 0, bytesPerSec: 0 },
      65536,
      0,
    );
    expect(chargeTimes(budget, 1000, true).every((wait) => wait === 0)).toBe(true);
    expect(chargeTimes(budget, 1000, false).every((wait) => wait === 0)).toBe(true);
    expect(budget.chargeBytes(10_000_000, 0)).toBe(0);
  });

  it('asks to close at the Nth violation within the window, not before, and forgets after it', () => {
    const budget = new ConnectionBudget(LIMITS, 65536, 0);
    expect([budget.violated(1), budget.violated(2)]).toEqual([false, false]);
    expect(budget.violated(VIOLATION_WINDOW_MS + 1)).toBe(false);
    expect(budget.violated(VIOLATION_WINDOW_MS + 2)).toBe(false);
    expect(budget.violated(VIOLATION_WINDOW_MS + 3)).toBe(true);
  });

  it('counts over any span of the window: a burst across where one would end still closes', () => {
    const budget = new ConnectionBudget(LIMITS, 65536, 0);
    expect([
      budget.violated(VIOLATION_WINDOW_MS - 2),
      budget.violated(VIOLATION_WINDOW_MS - 1),
    ]).toEqual([false, false]);
    expect(budget.violated(VIOLATION_WINDOW_MS + 1)).toBe(true);
  });

  it('never asks to close when violationsBeforeClose is 0', () => {
    const budget = new ConnectionBudget({ ...LIMITS, violationsBeforeClose: 0 }, 65536, 0);
    expect(Array.from({ length: 100 }, () => budget.violated(0)).some(Boolean)).toBe(false);
  });

  it('bounds WebSocket pings even with every rate off: the burst, then the refill', () => {
    const off = { ...LIMITS, posesPerSec: 0, actionsPerSec: 0, bytesPerSec: 0 };
    const budget = new ConnectionBudget(off, 65536, 0);
    const pings = Array.from({ length: CLIENT_PINGS_BURST }, () => budget.chargePing(0));
    expect(pings.every((wait) => wait === 0)).toBe(true);
    const interval = 1000 / CLIENT_PINGS_PER_SEC;
    expect(budget.chargePing(0)).toBe(interval);
    expect(budget.chargePing(interval)).toBe(0);
    // A keepalive a second, for an hour, is never refused.
    const keepalive = Array.from({ length: 3600 }, (_, second) =>
      budget.chargePing(1000 * (second + 1)),
    );
    expect(keepalive.every((wait) => wait === 0)).toBe(true);
  });
});
