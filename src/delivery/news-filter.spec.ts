import type { RoomInfo, RoomUser } from '../protocol/protocol.js';
import { initialRoomState } from '../state/room-state.js';
import type { BufferedEvent } from '../users/local-membership.js';
import { newsFilter } from './news-filter.js';

const user = (id: string): RoomUser => ({
  id,
  name: id,
  role: 'editor',
  connected: true,
  lastSeen: 0,
});

const snapshot = (...ids: string[]): RoomInfo => ({
  roomId: 'hall',
  users: ids.map(user),
  state: { ...initialRoomState(), version: 3 },
  createdAt: 0,
});

const held = (event: string, data: Record<string, unknown>): BufferedEvent => ({
  event,
  data: { roomId: 'hall', ...data },
  frame: { data: Buffer.from('') } as unknown as BufferedEvent['frame'],
});

describe('newsFilter: events held back while a join was pending', () => {
  it('passes on departures of users the snapshot lists and arrivals of users it does not', () => {
    const isNews = newsFilter(snapshot('alice', 'bob'), 'bob', () => true);
    expect(isNews(held('user_left', { userId: 'alice' }))).toBe(true);
    expect(isNews(held('user_left', { userId: 'alice' }))).toBe(false);
    expect(isNews(held('user_joined', { user: user('carol') }))).toBe(true);
    expect(isNews(held('user_joined', { user: user('carol') }))).toBe(false);
  });

  it("never passes on the joiner's own departure: an older socket's, which the snapshot is newer than", () => {
    // bob's socket on another instance dropped as bob joined here: its user_left was published
    // before the join committed, but reached this instance while the join was pending.
    const isNews = newsFilter(snapshot('alice', 'bob'), 'bob', () => true);
    expect(isNews(held('user_left', { userId: 'bob' }))).toBe(false);
    expect(isNews(held('user_joined', { user: user('bob') }))).toBe(false);
  });

  it("asks the joiner's connection about each held state update, by the update's version", () => {
    const asked: number[] = [];
    // Answers the snapshot (version 3) would not give, so that only a filter that asks, with the
    // update's own version, passes.
    const isNews = newsFilter(snapshot('alice'), 'alice', (version) => {
      asked.push(version);
      return version === 5;
    });
    expect(isNews(held('state_updated', { version: 4 }))).toBe(false);
    expect(isNews(held('state_updated', { version: 5 }))).toBe(true);
    expect(asked).toEqual([4, 5]);
  });
});
