import { OptionalRequestId } from './validators.js';

export class PingDto {
  @OptionalRequestId() requestId?: string;
}
