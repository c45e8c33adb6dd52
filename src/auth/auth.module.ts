import { Global, Module } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeyService } from './api-key.service.js';
import { AuthService } from './auth.service.js';
import { SessionExpiryService } from './session-expiry.service.js';

/** Global: the upgrade (app.setup), the gateway and the HTTP controllers all ask it. */
@Global()
@Module({
  providers: [ApiKeyService, ApiKeyGuard, AuthService, SessionExpiryService],
  exports: [ApiKeyService, ApiKeyGuard, AuthService, SessionExpiryService],
})
export class AuthModule {}
