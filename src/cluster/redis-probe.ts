import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { StoreProbe } from '../telemetry/store-probe.js';
import { CLUSTER, type Cluster } from './cluster.js';

const PING_TIMEOUT_MS = 1000;

/** A PING on the commands connection, timed; /metrics reports it as gms_redis_up and latency. */
@Injectable()
export class RedisProbe implements StoreProbe {
  constructor(@Inject(CLUSTER) private readonly cluster: Cluster) {}

  async ping(): Promise<number> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.cluster.publisher.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('Redis PING timed out')), PING_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return (performance.now() - started) / 1000;
  }
}
