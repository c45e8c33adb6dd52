import { jest } from '@jest/globals';
import { MemoryHeldSessions } from './memory-held-sessions.js';

describe('MemoryHeldSessions', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('finds a held session by token and gives it to one claim only', async () => {
    const sessions = new MemoryHeldSessions();
    await sessions.hold('t1', { userId: 'bob', roomIds: ['a', 'b'] }, 1000);
    expect(await sessions.userOf('t1')).toBe('bob');
    expect(await sessions.userOf('t2')).toBeUndefined();
    expect(await sessions.claim('t1')).toEqual({ userId: 'bob', roomIds: ['a', 'b'] });
    expect(await sessions.claim('t1')).toBeUndefined();
    expect(await sessions.userOf('t1')).toBeUndefined();
  });

  it('forgets a session once its time is over', async () => {
    jest.useFakeTimers({ now: 0 });
    const sessions = new MemoryHeldSessions();
    await sessions.hold('t1', { userId: 'bob', roomIds: ['a'] }, 1000);
    jest.setSystemTime(999);
    expect(await sessions.userOf('t1')).toBe('bob');
    jest.setSystemTime(1000);
    expect(await sessions.userOf('t1')).toBeUndefined();
    expect(await sessions.claim('t1')).toBeUndefined();
  });
});
