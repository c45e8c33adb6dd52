import { jest } from '@jest/globals';
import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { loadAppConfig } from '../config/app.config.js';
import { ServerEvent, type RoomUser, type ServerMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { Fanout } from './fanout.service.js';
import { toOutgoingFrame } from './outgoing-frame.js';
import { PoseBatches } from './pose-batches.js';
import { LocalDelivery, ROSTER_WATCH_MS } from './local-delivery.js';

const user = (id: string, slot: number): RoomUser => ({
  id,
  name: id,
  role: 'editor',
  connected: true,
  lastSeen: 0,
  slot,
});

const joined = (id: string, slot: number): ServerMessage<'user_joined'> => ({
  event: ServerEvent.UserJoined,
  data: { roomId: 'r', user: user(id, slot) },
});

const left = (id: string): ServerMessage<'user_left'> => ({
  event: ServerEvent.UserLeft,
  data: { roomId: 'r', userId: id },
});

describe('LocalDelivery: arrivals and departures a member got a snapshot of', () => {
  let users: UsersService;
  let delivery: LocalDelivery;
  /** What each user got, as `user_joined <id>` / `user_left <id>`. */
  let got: Map<string, string[]>;
  let now: number;

  const member = (userId: string): Connection => {
    const { connection } = users.connect(
      userId,
      {},
      fakeClientLink({
        enqueue: (frame) => {
          const { event, data } = JSON.parse(frame.json) as {
            event: string;
            data: { user?: { id: string }; userId?: string };
          };
          got.get(userId)?.push(`${event} ${data.user?.id ?? data.userId}`);
          return 'queued';
        },
      }),
    );
    got.set(userId, []);
    users.membership.beginJoin(connection, 'r');
    users.membership.completeJoin(connection, 'r');
    return connection;
  };

  beforeEach(() => {
    users = new UsersService();
    const fanout = new Fanout(loadAppConfig({}));
    delivery = new LocalDelivery(users, fanout, new PoseBatches(users, fanout));
    got = new Map();
    now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('does not tell a member of a seat its snapshot holds, nor of a departure it never saw', () => {
    const old = member('old');
    const bob = member('bob');
    delivery.trackRoster(bob, 'r', [user('old', 1), user('alice', 2), user('bob', 3)], []);

    delivery.publish('r', joined('alice', 2), 'alice'); // committed before bob's snapshot
    delivery.publish('r', left('dave'), undefined); // likewise: bob never had dave

    expect(got.get('bob')).toEqual([]);
    expect(got.get('old')).toEqual(['user_joined alice', 'user_left dave']);
    expect(old.rooms.has('r')).toBe(true);
  });

  it('tells it of what is news: a departure of a user it has, then that user back', () => {
    const bob = member('bob');
    delivery.trackRoster(bob, 'r', [user('alice', 2), user('bob', 3)], []);

    delivery.publish('r', left('alice'), undefined);
    delivery.publish('r', left('alice'), undefined);
    delivery.publish('r', joined('alice', 4), 'alice');
    delivery.publish('r', joined('alice', 4), 'alice');
    delivery.publish('r', joined('carol', 5), 'carol');

    expect(got.get('bob')).toEqual(['user_left alice', 'user_joined alice', 'user_joined carol']);
  });

  it('keeps each member to its own snapshot when several are tracked at once', () => {
    const bob = member('bob');
    const carol = member('carol');
    delivery.trackRoster(bob, 'r', [user('alice', 1), user('bob', 2)], []);
    // Carol's snapshot came later: it has dave, whose arrival bob has not been told yet, and no
    // alice, whose departure neither was.
    delivery.trackRoster(carol, 'r', [user('bob', 2), user('dave', 3), user('carol', 4)], []);

    delivery.publish('r', joined('dave', 3), 'dave');
    delivery.publish('r', joined('carol', 4), 'carol');
    delivery.publish('r', left('alice'), undefined);

    expect(got.get('bob')).toEqual(['user_joined dave', 'user_joined carol', 'user_left alice']);
    expect(got.get('carol')).toEqual([]);
  });

  it('counts what was sent after the snapshot among what the member holds', () => {
    const bob = member('bob');
    delivery.trackRoster(bob, 'r', [user('bob', 2)], [joined('carol', 3), left('bob')]);

    delivery.publish('r', joined('carol', 3), 'carol');
    delivery.publish('r', left('bob'), undefined);

    expect(got.get('bob')).toEqual([]);
  });

  it('filters a delivery to an audience taken earlier the same way', () => {
    const bob = member('bob');
    delivery.trackRoster(bob, 'r', [user('alice', 1), user('bob', 2)], []);
    const message = joined('alice', 1);

    delivery.toAudience('r', [bob], message, toOutgoingFrame(message));

    expect(got.get('bob')).toEqual([]);
  });

  it(`stops checking after ${ROSTER_WATCH_MS} ms, and forgets the rooms it tracked`, () => {
    const bob = member('bob');
    delivery.trackRoster(bob, 'r', [user('alice', 1), user('bob', 2)], []);
    now += ROSTER_WATCH_MS + 1;

    delivery.publish('r', joined('alice', 1), 'alice');
    expect(got.get('bob')).toEqual(['user_joined alice']);
    expect((delivery as unknown as { rosters: Map<string, unknown> }).rosters.size).toBe(0);
  });

  it('stops checking a member whose roster is untracked (resynced or gone)', () => {
    const bob = member('bob');
    delivery.trackRoster(bob, 'r', [user('alice', 1), user('bob', 2)], []);
    delivery.untrackRoster(bob, 'r');

    delivery.publish('r', joined('alice', 1), 'alice');
    expect(got.get('bob')).toEqual(['user_joined alice']);
  });
});
