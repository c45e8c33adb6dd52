import { Injectable } from '@nestjs/common';
import type {
  ClusterCoordinator,
  ClusterDependency,
  ClusterTotals,
} from '../cluster/cluster-coordinator.js';

/** One instance: every member is here, so there is nothing to sum and nothing to depend on. */
@Injectable()
export class SingleInstanceCoordinator implements ClusterCoordinator {
  readonly dependencies: readonly ClusterDependency[] = [];

  clusterTotals(): Promise<ClusterTotals | undefined> {
    return Promise.resolve(undefined);
  }
}
