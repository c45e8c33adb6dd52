import { Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app.config.js';
import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import { HeartbeatService } from './heartbeat.service.js';
import { UsersService } from './users.service.js';

describe('HeartbeatService', () => {
  // Only tick() is driven here: no interval is started.
  const config = { heartbeatIntervalMs: 1000 } as AppConfig;

  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  it('terminates a client that did not answer the last ping, counted as 1006', () => {
    const counters = new ServerCounters();
    const users = new UsersService(counters);
    let open = true;
    let pings = 0;
    let terminations = 0;
    const link = fakeClientLink({
      isOpen: () => open,
      ping: () => void (pings += 1),
      terminate: () => {
        open = false;
        terminations += 1;
      },
    });
    const { connection } = users.connect('dead', {}, link);
    const heartbeat = new HeartbeatService(users, config);

    heartbeat.tick();
    expect(pings).toBe(1);
    expect(terminations).toBe(0);
    heartbeat.tick();
    expect(terminations).toBe(1);
    expect([...counters.disconnects]).toEqual([[1006, 1]]);
    expect(connection.closedByServer).toBe(false);
  });

  it('keeps and does not count a client that answers', () => {
    const counters = new ServerCounters();
    const users = new UsersService(counters);
    let pong: () => void = () => undefined;
    const link = fakeClientLink({
      onPong: (listener) => void (pong = listener),
      ping: () => pong(),
      terminate: () => {
        throw new Error('terminated a live client');
      },
    });
    users.connect('alive', {}, link);
    const heartbeat = new HeartbeatService(users, config);

    for (let tick = 0; tick < 3; tick += 1) {
      heartbeat.tick();
    }
    expect(counters.disconnects.size).toBe(0);
  });
});
