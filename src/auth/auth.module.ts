import { Global, Module } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeyService } from './api-key.service.js';
import { AuthService } from './auth.service.js';

/** Global: the upgrade (app.setup), the gateway and the HTTP controllers all ask it. */
@Global()
@Module({
  providers: [ApiKeyService, ApiKeyGuard, AuthService],
  exports: [ApiKeyService, ApiKeyGuard, AuthService],
})
export class AuthModule {}
