import { Global, Module } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { MemoryRoomHistory } from './memory-room-history.js';
import { ROOM_HISTORY } from './room-history.js';

/**
 * The rooms' recent events for clients that resume (ROOM_HISTORY). Numbered only when seats are
 * held after a drop (RECONNECT_GRACE_MS > 0); kept in this process. One instance only: a cluster
 * keeps it in Redis (ClusterModule provides ROOM_HISTORY then).
 */
@Global()
@Module({
  providers: [
    {
      provide: MemoryRoomHistory,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig) =>
        new MemoryRoomHistory({
          enabled: config.resume.graceMs > 0,
          maxEvents: config.resume.historyEvents,
          maxAgeMs: config.resume.historyMs,
        }),
    },
    { provide: ROOM_HISTORY, useExisting: MemoryRoomHistory },
  ],
  exports: [ROOM_HISTORY, MemoryRoomHistory],
})
export class HistoryModule {}
