import { ProtocolError } from '../../protocol/protocol-error.js';
import { protocolValidationPipe } from '../protocol-validation.pipe.js';
import { ResumeDto } from './resume.dto.js';

/** The VALIDATION_FAILED a `resume` body gets, or undefined when it passes. */
async function refusalOf(body: unknown): Promise<ProtocolError | undefined> {
  try {
    await protocolValidationPipe.transform(body, { metatype: ResumeDto, type: 'body' });
    return undefined;
  } catch (error) {
    if (error instanceof ProtocolError) {
      return error;
    }
    throw error;
  }
}

describe('ResumeDto', () => {
  it('takes distinct rooms, with or without a position', async () => {
    const body = { rooms: [{ roomId: 'a', epoch: 'e', lastSeq: 3 }, { roomId: 'b' }] };
    expect(await refusalOf(body)).toBeUndefined();
  });

  it('refuses a room listed twice, whatever the positions say', async () => {
    const refusal = await refusalOf({
      rooms: [{ roomId: 'a', lastSeq: 1 }, { roomId: 'b' }, { roomId: 'a', lastSeq: 2 }],
    });
    expect(refusal).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'rooms' },
      message: 'rooms must not list a room twice',
    });
  });

  it('still names what is wrong with entries that have no roomId', async () => {
    expect(await refusalOf({ rooms: [{}, {}] })).toMatchObject({
      details: { field: 'rooms.0.roomId' },
    });
    expect(await refusalOf({ rooms: [null, null] })).toMatchObject({
      message: 'each of rooms must be an object',
    });
  });
});
