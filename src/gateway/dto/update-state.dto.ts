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
import { ProtocolError } from '../../protocol/protocol-error.js';
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

/** The most ops one `update_state` may carry. */
export const MAX_STATE_OPS = 100;

/** The fields of an op; `item` is for `add` and `update` only. */
const OP_FIELDS: readonly string[] = ['op', 'collection', 'id', 'item'];

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
  @ArrayMaxSize(MAX_STATE_OPS)
  @ValidateNested({ each: true })
  @IsObject({ each: true, message: 'each of ops must be an object' })
  @Type(() => StateOpDto)
  ops?: StateOpDto[];

  /** Checked on the body as received, before any op is looked at (array-limits.ts). */
  static readonly arrayLimits = { ops: MAX_STATE_OPS };

  /**
   * Every member gets the ops as sent (`state_updated`), and a client applies them as
   * docs/protocol.md says: an op may hold nothing the server would drop or overwrite, or the
   * members' copies drift from the stored state.
   */
  static refine(body: UpdateStateDto): void {
    body.ops?.forEach((op, index) => {
      checkOpAppliesAsSent(op, `ops.${index}`);
    });
  }
}

/** Refuses, naming the field, what of an op (already of the right shape) would not be stored. */
function checkOpAppliesAsSent(op: StateOpDto, path: string): void {
  const unknown = Object.keys(op).find((key) => !OP_FIELDS.includes(key));
  if (unknown !== undefined) {
    // Like patch's unknown sections: a typo would otherwise be relayed and never stored.
    throw ProtocolError.validation(
      `${path}.${unknown}`,
      `${path} may only contain ${OP_FIELDS.join(', ')}`,
    );
  }
  if (op.op === 'remove') {
    // null as absent, as for requestId: a serializer that writes explicit nulls was accepted.
    if (op.item !== undefined && op.item !== null) {
      throw ProtocolError.validation(`${path}.item`, `${path}.item must be left out on a remove`);
    }
    return;
  }
  // The stored item's id is always the op's: another would be relayed, then overwritten.
  if (Object.hasOwn(op.item as object, 'id') && op.item?.id !== op.id) {
    throw ProtocolError.validation(
      `${path}.item.id`,
      `${path}.item.id must be left out or equal ${path}.id`,
    );
  }
}
