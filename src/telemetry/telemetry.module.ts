import { Global, Module } from '@nestjs/common';
import { ServerCounters } from './server-counters.js';

/** The plain-number counters every module may bump; read by /metrics (src/metrics). */
@Global()
@Module({
  providers: [ServerCounters],
  exports: [ServerCounters],
})
export class TelemetryModule {}
