export const CLUSTER_COORDINATOR = Symbol('CLUSTER_COORDINATOR');

/** One live instance, as its last presence report describes it (for /stats and /admin). */
export interface InstanceSummary {
  instanceId: string;
  connections: number;
  droppedMessages: number;
  /** When the instance started (ms since epoch); absent in the reports of older versions. */
  startedAt?: number;
}

export interface ClusterTotals {
  instances: number;
  /** The live instances, by id. */
  instanceList: InstanceSummary[];
  connections: number;
  droppedMessages: number;
  /** Redis outages the live instances recovered from, and when the last recovery ended. */
  redisRecoveries: number;
  lastRedisRecoveryAt?: number;
}

/** Something this instance needs to serve (Redis in cluster mode), checked by /health/ready. */
export interface ClusterDependency {
  readonly name: string;
  /** Resolves when it answers; rejects with the reason when it does not. */
  ping(): Promise<void>;
}

/**
 * What the rest of the server may ask about the deployment it runs in, whatever it is: one
 * instance (StandaloneModule) or many sharing Redis (ClusterModule). Presence, session takeover
 * and recovery after an outage live behind it, inside the cluster module.
 */
export interface ClusterCoordinator {
  /** Connections and drops summed over the live instances; undefined for a single instance. */
  clusterTotals(): Promise<ClusterTotals | undefined>;
  /** What readiness depends on besides this process; none for a single instance. */
  readonly dependencies: readonly ClusterDependency[];
}
