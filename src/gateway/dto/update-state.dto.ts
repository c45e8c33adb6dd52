import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  MaxLength,
  Min,
  MinLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import {
  STATE_COLLECTIONS,
  STATE_OPS,
  STATE_PATCH_SECTIONS,
  type StateCollection,
  type StateOpKind,
} from '../../protocol/protocol.js';
import { HasOnlyKeys, IsProtocolId, OptionalNotNull, OptionalRequestId } from './validators.js';

export class StatePatchDto {
  @IsOptional() @MaxLength(2048) @IsString() sceneUrl?: string | null;
  @OptionalNotNull() @IsBoolean() sceneLoaded?: boolean;
  @OptionalNotNull() @IsObject() treeViewState?: Record<string, unknown>;
  @OptionalNotNull() @IsObject() sessionSettings?: Record<string, unknown>;
}

export class StateOpDto {
  @IsIn(STATE_OPS) op: StateOpKind;
  @IsIn(STATE_COLLECTIONS) collection: StateCollection;
  @MaxLength(128) @MinLength(1) @IsString() id: string;
  @ValidateIf((op: StateOpDto) => op.op !== 'remove') @IsObject() item?: Record<string, unknown>;
}

// class-validator reports the decorator nearest the property first: the type check sits there.
export class UpdateStateDto {
  @OptionalRequestId() requestId?: string;
  @IsProtocolId() roomId: string;
  @ValidateIf((dto: UpdateStateDto) => dto.patch !== undefined || dto.baseVersion !== undefined)
  @Min(0)
  @IsInt()
  baseVersion?: number;
  @ValidateIf((dto: UpdateStateDto) => dto.patch !== undefined || dto.ops === undefined)
  @ValidateNested()
  @HasOnlyKeys(STATE_PATCH_SECTIONS)
  @IsObject({ message: 'patch must be an object (update_state needs a patch or ops)' })
  @Type(() => StatePatchDto)
  patch?: StatePatchDto;
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @IsObject({ each: true, message: 'each of ops must be an object' })
  @Type(() => StateOpDto)
  ops?: StateOpDto[];
}
