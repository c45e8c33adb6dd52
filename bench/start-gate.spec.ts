import { StartGate } from './start-gate.js';

/** Whether the promise has settled by the time the microtasks queued so far have run. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('StartGate (--side-by-side)', () => {
  it('keeps the first party waiting until the second one waits too', async () => {
    const gate = new StartGate(2);
    const ours = gate.party();
    const baseline = gate.party();
    const oursWaits = ours.wait();
    expect(await settled(oursWaits)).toBe(false);
    const baselineWaits = baseline.wait();
    expect(await settled(oursWaits)).toBe(true);
    expect(await settled(baselineWaits)).toBe(true);
  });

  it('lets the waiting party go when the other one leaves without waiting (it failed)', async () => {
    const gate = new StartGate(2);
    const ours = gate.party();
    const baseline = gate.party();
    const baselineWaits = baseline.wait();
    expect(await settled(baselineWaits)).toBe(false);
    ours.leave();
    expect(await settled(baselineWaits)).toBe(true);
  });

  it('counts a party once, whether it waits and then leaves or leaves twice', async () => {
    const gate = new StartGate(3);
    const first = gate.party();
    const second = gate.party();
    const third = gate.party();
    const firstWaits = first.wait();
    first.leave();
    second.leave();
    second.leave();
    expect(await settled(firstWaits)).toBe(false);
    third.leave();
    expect(await settled(firstWaits)).toBe(true);
  });
});
