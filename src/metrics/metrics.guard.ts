import {
  ForbiddenException,
  Inject,
  Injectable,
  NotFoundException,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { AuthService } from '../auth/auth.service.js';
import { bearerTokenOf } from '../auth/bearer-token.js';
import { credentialsOf } from '../auth/credentials.js';
import { appConfig, type AppConfig } from '../config/app.config.js';

/**
 * Who may read /metrics on PORT: anyone with AUTH_MODE=none, the API key with api-key, the API
 * key or an admin token with jwt (no credentials 401, others 403). With METRICS_PORT set it is
 * served there only, and this port answers 404.
 */
@Injectable()
export class MetricsGuard implements CanActivate {
  constructor(
    private readonly auth: AuthService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.config.metricsPort !== undefined) {
      throw new NotFoundException('Metrics are served on METRICS_PORT');
    }
    if (this.config.authMode === 'none') {
      return true;
    }
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    if (await this.auth.isAdmin(request)) {
      return true;
    }
    const presented =
      credentialsOf(request).apiKey !== undefined || bearerTokenOf(request) !== undefined;
    if (this.config.authMode === 'jwt' && presented) {
      throw new ForbiddenException('Metrics need the API key or an admin token');
    }
    throw new UnauthorizedException('Metrics need the API key or an admin token');
  }
}
