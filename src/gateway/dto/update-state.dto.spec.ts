import 'reflect-metadata';
import { ProtocolError } from '../../protocol/protocol-error.js';
import { protocolValidationPipe } from '../protocol-validation.pipe.js';
import { UpdateStateDto } from './update-state.dto.js';

/** The VALIDATION_FAILED an `update_state` body gets, or undefined when it passes. */
async function refusalOf(body: object): Promise<ProtocolError | undefined> {
  try {
    await protocolValidationPipe.transform(body, { metatype: UpdateStateDto, type: 'body' });
    return undefined;
  } catch (error) {
    if (error instanceof ProtocolError) {
      return error;
    }
    throw error;
  }
}

const opsRefusal = (...ops: object[]) => refusalOf({ roomId: 'r', ops });

const add = { op: 'add', collection: 'annotations', id: 'a1', item: { text: 'x' } };
const update = { op: 'update', collection: 'focusPoints', id: 'f1', item: { fov: 60 } };
const remove = { op: 'remove', collection: 'annotations', id: 'a1' };

describe('UpdateStateDto ops: relayed as sent, so they hold only what is applied', () => {
  it('takes ops of the four fields, and an item.id equal to the op id', async () => {
    expect(await opsRefusal(add, update, remove)).toBeUndefined();
    expect(await opsRefusal({ ...add, item: { id: 'a1', text: 'x' } })).toBeUndefined();
    expect(await opsRefusal({ ...update, item: { id: 'f1' } })).toBeUndefined();
  });

  it.each([
    ['an add', add],
    ['an update', update],
    ['a remove', remove],
  ])('refuses a field beyond op, collection, id, item on %s, naming it', async (_kind, op) => {
    const refusal = await opsRefusal(add, { ...op, extra: 'junk' });
    expect(refusal).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'ops.1.extra' },
      message: 'ops.1 may only contain op, collection, id, item',
    });
  });

  it('refuses a "constructor" key on an op like any other unknown field', async () => {
    const op = JSON.parse(
      '{"op":"add","collection":"annotations","id":"c","item":{},"constructor":1}',
    );
    expect(await opsRefusal(op)).toMatchObject({ details: { field: 'ops.0.constructor' } });
  });

  it.each([
    ['an add', add],
    ['an update', update],
  ])('refuses on %s an item.id other than the op id, which would not be stored', async (_k, op) => {
    for (const id of ['zzz', '', 5, null, { id: op.id }]) {
      const refusal = await opsRefusal({ ...op, item: { id, text: 'y' } });
      expect(refusal).toMatchObject({
        code: 'VALIDATION_FAILED',
        details: { field: 'ops.0.item.id' },
        message: 'ops.0.item.id must be left out or equal ops.0.id',
      });
    }
  });

  it('refuses an item on a remove, which takes none; null counts as none', async () => {
    expect(await opsRefusal({ ...remove, item: null })).toBeUndefined();
    for (const item of [{ text: 'x' }, {}, 'junk']) {
      expect(await opsRefusal({ ...remove, item })).toMatchObject({
        code: 'VALIDATION_FAILED',
        details: { field: 'ops.0.item' },
        message: 'ops.0.item must be left out on a remove',
      });
    }
  });

  it('reports the shape problems the decorators find first', async () => {
    const refusal = await opsRefusal({ op: 'add', collection: 'users', id: 'a', extra: 1 });
    expect(refusal).toMatchObject({ details: { field: 'ops.0.collection' } });
  });
});
