import { Global, Module, type DynamicModule } from '@nestjs/common';
import { appConfig, type AppConfig } from './app.config.js';

/** Typed settings, validated once at boot; every module injects `appConfig.KEY`. */
@Global()
@Module({})
export class AppConfigModule {
  /** @param config the settings, already validated (see loadAppConfig). */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      providers: [{ provide: appConfig.KEY, useValue: config }],
      exports: [appConfig.KEY],
    };
  }
}
