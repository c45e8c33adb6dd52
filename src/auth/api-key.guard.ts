import {
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { credentialsOf } from './credentials.js';
import { ApiKeyService } from './api-key.service.js';

/** Protects HTTP routes (such as /stats) with the same API key as the WebSocket upgrade. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly apiKeys: ApiKeyService) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    if (!this.apiKeys.accepts(credentialsOf(request).apiKey)) {
      throw new UnauthorizedException('A valid API key is required');
    }
    return true;
  }
}
