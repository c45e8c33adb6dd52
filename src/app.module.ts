import { Module } from '@nestjs/common';
import { AuthModule } from './auth/auth.module.js';
import { ClusterMembershipModule } from './cluster/cluster-membership.module.js';
import { ClusterModule } from './cluster/cluster.module.js';
import { AppConfigModule } from './config/config.module.js';
import { GatewayModule } from './gateway/gateway.module.js';
import { HealthModule } from './health/health.module.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { LimitsModule } from './limits/limits.module.js';
import { StatsModule } from './stats/stats.module.js';

@Module({
  imports: [
    AppConfigModule,
    ClusterModule,
    ClusterMembershipModule,
    AuthModule,
    LimitsModule,
    LifecycleModule,
    GatewayModule,
    HealthModule,
    StatsModule,
  ],
})
export class AppModule {}
