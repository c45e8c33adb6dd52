import { Module } from '@nestjs/common';
import { RoomsModule } from '../rooms/rooms.module.js';
import { UsersModule } from '../users/users.module.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsGuard } from './metrics.guard.js';
import { MetricsServer } from './metrics-server.js';
import { MetricsService } from './metrics.service.js';

/** `/metrics` in the Prometheus text format, on PORT or on METRICS_PORT (docs/metrics.md). */
@Module({
  imports: [RoomsModule, UsersModule],
  controllers: [MetricsController],
  providers: [MetricsService, MetricsGuard, MetricsServer],
})
export class MetricsModule {}
