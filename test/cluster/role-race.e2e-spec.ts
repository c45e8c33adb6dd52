import { CLUSTER, type Cluster } from '../../src/cluster/cluster.js';
import { useTestCluster } from '../support/cluster.js';
import { describeRoleRaces, holdCall, joinRaceRoom } from '../support/role-race.js';

describe('cluster: role checks at commit time, the demoter and the actor on different instances', () => {
  const fixture = useTestCluster({ instances: 3 });

  describeRoleRaces({
    members: async () => {
      const alice = await fixture.connect(0, 'alice');
      const bob = await fixture.connect(1, 'bob');
      const carol = await fixture.connect(2, 'carol');
      return joinRaceRoom(alice, bob, carol);
    },
    servers: () => fixture.servers,
    // Held after the store read the state (and the actor's role) and before the commit script:
    // only the script itself can see the role is gone.
    holdStateWrite: (server) =>
      holdCall(server.app.get<Cluster>(CLUSTER).publisher, 'gmsCommitState'),
  });
});
