import { jest } from '@jest/globals';
import type { WebSocket } from 'ws';
import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { loadAppConfig } from '../config/app.config.js';
import { ServerEvent, type ServerMessage } from '../protocol/protocol.js';
import { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { ClientOutput } from './client-output.js';
import { Fanout } from './fanout.service.js';
import { PoseBatches } from './pose-batches.js';
import { LocalDelivery, MAX_HELD_EVENTS } from './local-delivery.js';

const message = (n: number): ServerMessage<'message'> => ({
  event: ServerEvent.Message,
  data: { roomId: 'r', message: { type: 'chat', data: { n } }, senderId: 'bob' },
});

describe('LocalDelivery: events held back for a joiner', () => {
  let users: UsersService;
  let fanout: Fanout;
  let delivery: LocalDelivery;
  let joiner: Connection;
  let overflowed: Connection[];

  beforeEach(() => {
    users = new UsersService();
    fanout = new Fanout(loadAppConfig({}));
    delivery = new LocalDelivery(users, fanout, new PoseBatches(users, fanout));
    joiner = new Connection('alice', {}, new ClientOutput({} as unknown as WebSocket, undefined));
    overflowed = [];
    fanout.onOverflow((connection) => overflowed.push(connection));
    users.membership.beginJoin(joiner, 'r');
  });

  it('holds every room event for a pending joiner, in order', () => {
    delivery.publish('r', message(1), 'bob');
    delivery.publish('r', message(2), 'bob');
    const held = users.membership.completeJoin(joiner, 'r');
    expect(
      held.map((event) => (event.data as { message: { data: unknown } }).message.data),
    ).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('does not hold throwaway events (poses)', () => {
    delivery.publishPose('r', 'bob', undefined, message(1).data.message);
    expect(users.membership.completeJoin(joiner, 'r')).toEqual([]);
  });

  it(`drops a joiner as too slow once ${MAX_HELD_EVENTS} events wait for it`, () => {
    for (let n = 0; n < MAX_HELD_EVENTS; n++) {
      delivery.publish('r', message(n), 'bob');
    }
    expect(overflowed).toEqual([]);
    delivery.publish('r', message(MAX_HELD_EVENTS), 'bob');
    expect(overflowed).toEqual([joiner]);
    expect(users.membership.pending('r')?.get(joiner)).toHaveLength(MAX_HELD_EVENTS);
  });

  it('does not deliver a state update the joiner already had in its snapshot, or twice', () => {
    users.membership.completeJoin(joiner, 'r', 2);
    const sent: string[] = [];
    jest.spyOn(fanout, 'sendFrame').mockImplementation((_connection, frame) => {
      sent.push(frame.json);
      return true;
    });
    const update = (version: number): ServerMessage<'state_updated'> => ({
      event: ServerEvent.StateUpdated,
      data: { roomId: 'r', version, ops: [], updatedBy: 'bob' },
    });
    for (const version of [2, 3, 3, 4]) {
      delivery.publish('r', update(version), 'bob');
    }
    expect(
      sent.map((json) => (JSON.parse(json) as { data: { version: number } }).data.version),
    ).toEqual([3, 4]);
  });
});

describe('LocalDelivery: the poses of one turn after a membership change', () => {
  const pose = { type: 'pose_update', data: { position: [0, 0, 0], rotation: [0, 0, 0, 1] } };
  let users: UsersService;
  let delivery: LocalDelivery;
  let received: Map<string, number>;

  const member = (userId: string): Connection => {
    const connection = new Connection(
      userId,
      {},
      fakeClientLink({
        enqueue: () => {
          received.set(userId, (received.get(userId) ?? 0) + 1);
          return 'queued';
        },
      }),
    );
    users.membership.beginJoin(connection, 'r');
    users.membership.completeJoin(connection, 'r');
    return connection;
  };

  beforeEach(() => {
    users = new UsersService();
    const fanout = new Fanout(loadAppConfig({}));
    delivery = new LocalDelivery(users, fanout, new PoseBatches(users, fanout));
    received = new Map();
  });

  it('sends none to a member that left earlier in the turn, and some to one that joined', () => {
    member('alice');
    const bob = member('bob');
    delivery.publishPose('r', 'alice', undefined, pose);
    expect(received.get('bob')).toBe(1);

    users.membership.remove(bob, 'r');
    member('carol');
    delivery.publishPose('r', 'alice', undefined, pose);

    expect(received.get('bob')).toBe(1);
    expect(received.get('carol')).toBe(1);
  });

  it('sends none to a socket whose session another socket took over', () => {
    member('alice');
    const old = member('bob');
    delivery.publishPose('r', 'alice', undefined, pose);
    const replacement = new Connection(
      'bob-2',
      {},
      fakeClientLink({
        enqueue: () => {
          received.set('bob-2', (received.get('bob-2') ?? 0) + 1);
          return 'queued';
        },
      }),
    );

    users.membership.transfer(old, replacement);
    delivery.publishPose('r', 'alice', undefined, pose);

    expect(received.get('bob')).toBe(1);
    expect(received.get('bob-2')).toBe(1);
  });
});
