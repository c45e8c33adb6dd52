import { Module, type DynamicModule } from '@nestjs/common';
import { AuthModule } from './auth/auth.module.js';
import { ClusterModule } from './cluster/cluster.module.js';
import { appConfig, type AppConfig } from './config/app.config.js';
import { AppConfigModule } from './config/config.module.js';
import { DeliveryModule } from './delivery/delivery.module.js';
import { ExtensionsModule } from './extensions/extensions.module.js';
import { GatewayModule } from './gateway/gateway.module.js';
import { HealthModule } from './health/health.module.js';
import { HistoryModule } from './history/history.module.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { LimitsModule } from './limits/limits.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { PagesModule } from './pages/pages.module.js';
import { StandaloneModule } from './standalone/standalone.module.js';
import { StatsModule } from './stats/stats.module.js';
import { TelemetryModule } from './telemetry/telemetry.module.js';

type ModuleImport = NonNullable<DynamicModule['imports']>[number];

export interface AppModuleOptions {
  /** The settings; default: read from the environment and validated (a bad value throws). */
  config?: AppConfig;
  /** Your own modules: actions, hooks, lifecycle listeners. See docs/extending.md. */
  imports?: ModuleImport[];
}

/**
 * The whole server. `forRoot` picks the deployment once, from the settings: ClusterModule
 * (Redis) when REDIS_URL is set, StandaloneModule (memory) otherwise; both provide ROOM_STORE,
 * ROOM_BUS, CLUSTER_COORDINATOR and ROOM_HISTORY, which is all the other modules know of them.
 */
@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions = {}): DynamicModule {
    const config = options.config ?? appConfig();
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        TelemetryModule,
        // Each provides ROOM_STORE, ROOM_BUS, CLUSTER_COORDINATOR and ROOM_HISTORY.
        ...(config.redisUrl ? [ClusterModule] : [HistoryModule, StandaloneModule]),
        DeliveryModule,
        ExtensionsModule,
        AuthModule,
        LimitsModule,
        LifecycleModule,
        GatewayModule,
        HealthModule,
        StatsModule,
        MetricsModule,
        PagesModule,
        ...(options.imports ?? []),
      ],
    };
  }
}
