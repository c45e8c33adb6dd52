import { applyDecorators, UseFilters } from '@nestjs/common';
import { WebSocketGateway } from '@nestjs/websockets';
import { ProtocolExceptionFilter } from './protocol-exception.filter.js';

/**
 * Marks a class as a gateway of custom actions, on the server's own socket: its
 * `@SubscribeMessage('your_action')` handlers are parsed, ordered, rate limited and authorized
 * (`@RequireRoomRole`) like the built-in actions, and what they throw becomes the protocol's
 * `error` event with the request's requestId. See docs/extending.md.
 */
export function ActionGateway(): ClassDecorator {
  return applyDecorators(WebSocketGateway(), UseFilters(ProtocolExceptionFilter));
}
