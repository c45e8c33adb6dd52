import { IsString, MaxLength, MinLength } from 'class-validator';
import { MAX_TOKEN_LENGTH } from '../../auth/jwt-verifier.js';
import { OptionalRequestId } from './validators.js';

export class RefreshTokenDto {
  @OptionalRequestId() requestId?: string;
  @MaxLength(MAX_TOKEN_LENGTH) @MinLength(1) @IsString() token: string;
}
