import { IsNumber, IsObject, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';

/** An application message (`broadcast`, `send_message`): relayed exactly as received. */
export class AppMessageDto {
  @IsString() @MinLength(1) @MaxLength(64) type: string;
  @IsOptional() @IsString() @MaxLength(64) senderId?: string;
  @IsOptional() @IsNumber({ allowNaN: false, allowInfinity: false }) timestamp?: number;
  @IsOptional() @IsObject() data?: Record<string, unknown>;
}
