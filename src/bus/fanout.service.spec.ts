import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { loadAppConfig } from '../config/app.config.js';
import { Connection } from '../users/connection.js';
import { Fanout } from './fanout.service.js';
import { TURN_BUDGET_MS } from './load-shedder.js';

/** Runs `turns` event-loop turns each busy past the shedder's budget, then asks once more. */
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

  it('never sheds with server ticks, where a held pose costs next to nothing', async () => {
    const fanout = new Fanout(loadAppConfig({ POSE_TICK_MS: '33' }));
    expect(await shedsAfterLongTurns(fanout, 4)).toBe(false);
  });
});
