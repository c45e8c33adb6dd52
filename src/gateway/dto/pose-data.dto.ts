import { plainToInstance } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsNumber,
  validateSync,
  ValidatorConstraint,
  type ValidationArguments,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { POSE_UPDATE } from '../../protocol/protocol.js';

const FINITE = { allowNaN: false, allowInfinity: false };

/** The data of a `pose_update`: a position and a rotation quaternion. Other fields are relayed. */
export class PoseDataDto {
  @IsNumber(FINITE, { each: true })
  @ArrayMaxSize(3)
  @ArrayMinSize(3)
  @IsArray()
  position: number[];

  @IsNumber(FINITE, { each: true })
  @ArrayMaxSize(4)
  @ArrayMinSize(4)
  @IsArray()
  rotation: number[];
}

/** On AppMessageDto.data: a `pose_update` message's data must be a PoseDataDto. */
@ValidatorConstraint({ name: 'poseData' })
export class PoseDataRule implements ValidatorConstraintInterface {
  validate(data: unknown, args: ValidationArguments): boolean {
    if ((args.object as { type?: unknown }).type !== POSE_UPDATE) {
      return true;
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      return false;
    }
    return (
      validateSync(plainToInstance(PoseDataDto, data), { stopAtFirstError: true }).length === 0
    );
  }

  defaultMessage(): string {
    return POSE_DATA_MESSAGE;
  }
}

export const POSE_DATA_MESSAGE =
  'pose_update data needs position [x, y, z] and rotation [x, y, z, w] of finite numbers';
