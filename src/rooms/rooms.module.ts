import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { UsersModule } from '../users/users.module.js';
import { FileRoomPersistence } from './file-room-persistence.js';
import { MemoryRoomStore } from './memory-room-store.js';
import { RelayService } from './relay.service.js';
import { RoomExpiryService } from './room-expiry.service.js';
import { ROOM_PERSISTENCE } from './room-persistence.js';
import { ROOM_STORE } from './room-store.js';
import { RoomsService } from './rooms.service.js';
import { SlowClientService } from './slow-client.service.js';

@Module({
  imports: [BusModule, UsersModule],
  providers: [
    RoomsService,
    RelayService,
    RoomExpiryService,
    SlowClientService,
    { provide: ROOM_STORE, useClass: MemoryRoomStore },
    {
      // DATA_DIR is checked (and created) while the app is created, before anything listens.
      provide: ROOM_PERSISTENCE,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig) => FileRoomPersistence.open(config.dataDir),
    },
  ],
  exports: [RoomsService, RelayService, ROOM_STORE],
})
export class RoomsModule {}
