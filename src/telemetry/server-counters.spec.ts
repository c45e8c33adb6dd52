import { ServerCounters } from './server-counters.js';

describe('ServerCounters.requestError', () => {
  it('counts error replies by code', () => {
    const counters = new ServerCounters();
    counters.requestError('NOT_IN_ROOM');
    counters.requestError('NOT_IN_ROOM');
    counters.requestError('TEAM_QUOTA');
    expect([...counters.requestErrors]).toEqual([
      ['NOT_IN_ROOM', 2],
      ['TEAM_QUOTA', 1],
    ]);
  });

  it('labels a code that is not shaped like one INVALID_CODE', () => {
    const counters = new ServerCounters();
    for (const code of [undefined, 42, '', 'lower', 'has space', `A${'B'.repeat(48)}`]) {
      counters.requestError(code);
    }
    expect([...counters.requestErrors]).toEqual([['INVALID_CODE', 6]]);
  });

  it('keeps at most 64 codes, counting the rest as OTHER', () => {
    const counters = new ServerCounters();
    for (let i = 0; i < 100; i++) {
      counters.requestError(`CODE_${i}`);
    }
    counters.requestError('CODE_0');
    expect(counters.requestErrors.size).toBe(65);
    expect(counters.requestErrors.get('CODE_0')).toBe(2);
    expect(counters.requestErrors.get('CODE_63')).toBe(1);
    expect(counters.requestErrors.get('OTHER')).toBe(100 - 64);
  });
});
