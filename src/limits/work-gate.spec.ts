import { WorkGate } from './work-gate.js';

/** A job that runs until `finish()` is called; `started` says whether it began. */
function heldJob() {
  let finish: () => void = () => undefined;
  const job = {
    started: false,
    done: new Promise<void>((resolve) => (finish = resolve)),
    finish: () => finish(),
    run: async () => {
      job.started = true;
      await job.done;
      return 'ok';
    },
  };
  return job;
}

const full = () => new Error('full');

/** Lets promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WorkGate', () => {
  it('runs at most `concurrency` jobs at once, the others in order as places free', async () => {
    const gate = new WorkGate({ concurrency: 2, queue: 10 }, full);
    const jobs = [heldJob(), heldJob(), heldJob(), heldJob()];
    const results = jobs.map((job) => gate.run(job.run));
    await settle();
    expect(jobs.map((job) => job.started)).toEqual([true, true, false, false]);
    expect(gate.stats()).toMatchObject({ running: 2, waiting: 2 });

    jobs[1].finish();
    await settle();
    expect(jobs.map((job) => job.started)).toEqual([true, true, true, false]);
    expect(gate.stats()).toMatchObject({ running: 2, waiting: 1 });

    jobs.forEach((job) => job.finish());
    expect(await Promise.all(results)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(gate.stats()).toEqual({ running: 0, waiting: 0, started: 4, refused: 0 });
  });

  it('refuses a job at once when every place is taken and the queue is full', async () => {
    const gate = new WorkGate({ concurrency: 1, queue: 1 }, full);
    const [running, waiting, refused] = [heldJob(), heldJob(), heldJob()];
    const results = [gate.run(running.run), gate.run(waiting.run)];
    await expect(gate.run(refused.run)).rejects.toThrow('full');
    expect(refused.started).toBe(false);
    expect(gate.stats()).toMatchObject({ running: 1, waiting: 1, refused: 1 });

    running.finish();
    waiting.finish();
    await Promise.all(results);
    // The places came back: the next job runs.
    const later = heldJob();
    const result = gate.run(later.run);
    later.finish();
    expect(await result).toBe('ok');
  });

  it('with no queue, refuses every job beyond the running ones', async () => {
    const gate = new WorkGate({ concurrency: 1, queue: 0 }, full);
    const first = heldJob();
    const result = gate.run(first.run);
    await expect(gate.run(heldJob().run)).rejects.toThrow('full');
    first.finish();
    await result;
  });

  it('gives the place back when a job fails', async () => {
    const gate = new WorkGate({ concurrency: 1, queue: 0 }, full);
    await expect(gate.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(gate.stats()).toMatchObject({ running: 0 });
    expect(await gate.run(() => Promise.resolve(7))).toBe(7);
  });

  it('starts waiting jobs when configure raises the concurrency', async () => {
    const gate = new WorkGate({ concurrency: 1, queue: 5 }, full);
    const jobs = [heldJob(), heldJob(), heldJob()];
    const results = jobs.map((job) => gate.run(job.run));
    await settle();
    gate.configure({ concurrency: 3, queue: 5 });
    await settle();
    expect(jobs.map((job) => job.started)).toEqual([true, true, true]);
    jobs.forEach((job) => job.finish());
    await Promise.all(results);
  });

  it('refuses limits that would stop it or let everything through', () => {
    expect(() => new WorkGate({ concurrency: 0, queue: 1 }, full)).toThrow(/concurrency >= 1/);
    expect(() => new WorkGate({ concurrency: 1, queue: -1 }, full)).toThrow(/queue >= 0/);
    expect(() => new WorkGate({ concurrency: 1.5, queue: 1 }, full)).toThrow();
  });
});
