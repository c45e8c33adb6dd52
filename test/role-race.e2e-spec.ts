import { useTestServer } from './support/fixtures.js';
import { describeRoleRaces, holdCall, joinRaceRoom, storeOf } from './support/role-race.js';

describe('role checks at commit time: a request in flight when its sender loses the role', () => {
  const fixture = useTestServer();

  describeRoleRaces({
    members: async () => {
      const [alice, bob, carol] = await fixture.connectAll('alice', 'bob', 'carol');
      return joinRaceRoom(alice, bob, carol);
    },
    servers: () => fixture.servers,
    holdStateWrite: (server) => holdCall(storeOf(server), 'applyStateChange'),
  });
});
