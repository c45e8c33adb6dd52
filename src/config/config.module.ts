import { Module } from '@nestjs/common';
import { ConfigModule as NestConfigModule } from '@nestjs/config';
import { appConfig } from './app.config.js';

/** Typed settings, validated once at boot; every module injects `appConfig.KEY`. */
@Module({
  imports: [NestConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [appConfig] })],
})
export class AppConfigModule {}
