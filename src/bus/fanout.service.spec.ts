import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { loadAppConfig } from '../config/app.config.js';
import { MessageKind, ServerCounters } from '../telemetry/server-counters.js';
import { Connection } from '../users/connection.js';
import { Fanout } from './fanout.service.js';
import { toOutgoingFrame } from './outgoing-frame.js';

/** The default POSE_SHED_TURN_MS. */
const TURN_BUDGET_MS = loadAppConfig({}).poseShedTurnMs;

/** Runs `turns` event-loop turns each busy past the default budget, then asks once more. */
async function shedsAfterLongTurns(fanout: Fanout, turns: number): Promise<boolean> {
  const sender = new Connection('alice', {}, fakeClientLink());
  sender.rooms.add('r');
  for (let turn = 0; turn < turns; turn++) {
    fanout.shedOnArrival(sender, 'r');
    const until = performance.now() + TURN_BUDGET_MS + 5;
    while (performance.now() < until) {
      // A turn that stays busy past the budget.
    }
    fanout.scheduleFlush();
    await new Promise((resolve) => setImmediate(resolve));
  }
  let shed = false;
  for (let i = 0; i < 200; i++) {
    shed ||= fanout.shedOnArrival(sender, 'r');
  }
  return shed;
}

describe('Fanout: shedding poses on arrival', () => {
  it('sheds once turns keep running over budget, per message', async () => {
    expect(await shedsAfterLongTurns(new Fanout(loadAppConfig({})), 4)).toBe(true);
  });

  it('sheds past the budget set by POSE_SHED_TURN_MS, not below it', async () => {
    // The long turns are TURN_BUDGET_MS + 5 ms: over a budget of 50, under one of 1000.
    expect(
      await shedsAfterLongTurns(new Fanout(loadAppConfig({ POSE_SHED_TURN_MS: '50' })), 4),
    ).toBe(true);
    const fanout = new Fanout(loadAppConfig({ POSE_SHED_TURN_MS: '1000' }));
    expect(await shedsAfterLongTurns(fanout, 4)).toBe(false);
  });

  it('never sheds with POSE_SHED_TURN_MS=0: every pose is relayed', async () => {
    const fanout = new Fanout(loadAppConfig({ POSE_SHED_TURN_MS: '0' }));
    expect(fanout.shedsOnArrival).toBe(false);
    expect(await shedsAfterLongTurns(fanout, 4)).toBe(false);
  });

  it('never sheds with server ticks, where a held pose costs next to nothing', async () => {
    const fanout = new Fanout(loadAppConfig({ POSE_TICK_MS: '33' }));
    expect(await shedsAfterLongTurns(fanout, 4)).toBe(false);
  });
});

describe('Fanout: one throwaway frame to many (sendThrowaway)', () => {
  const frame = toOutgoingFrame({ event: 'message', data: { n: 1 } }, true);

  it('queues it for every recipient but the sender, and counts what went and what dropped', () => {
    const counters = new ServerCounters();
    const fanout = new Fanout(loadAppConfig({}), counters);
    const queued: string[] = [];
    const member = (userId: string, result: 'queued' | 'dropped'): Connection =>
      new Connection(
        userId,
        {},
        fakeClientLink({
          enqueue: () => {
            queued.push(userId);
            return result;
          },
        }),
      );
    const recipients = [
      member('alice', 'queued'),
      member('bob', 'queued'),
      member('carol', 'dropped'),
      member('dave', 'queued'),
    ];

    expect(fanout.sendThrowaway(recipients, 'bob', frame)).toBe(1);

    expect(queued).toEqual(['alice', 'carol', 'dave']);
    expect(counters.sent[MessageKind.Pose]).toBe(2);
    expect(counters.bytesSent).toBe(2 * frame.bytes.length);
    expect(counters.droppedSlowClient).toBe(1);
  });

  it('gives a recipient past its hard limit to the overflow listeners', () => {
    const fanout = new Fanout(loadAppConfig({}));
    const full = new Connection('alice', {}, fakeClientLink({ enqueue: () => 'overflow' }));
    const overflowed: Connection[] = [];
    fanout.onOverflow((connection) => overflowed.push(connection));

    expect(fanout.sendThrowaway([full], 'bob', frame)).toBe(0);
    expect(overflowed).toEqual([full]);
  });
});
