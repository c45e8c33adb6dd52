import type { ServerEventMap } from '../src/protocol/protocol.js';
import { RATE_LIMITS_OFF, useTestServer } from './support/fixtures.js';
import { delay, type Received } from './support/test-client.js';

type StateUpdated = ServerEventMap['state_updated'];

const addOp = (id: string) => ({
  op: 'add',
  collection: 'annotations',
  id,
  item: { label: id },
});

/** The sequence number alice put in a `tick` broadcast. */
const seqOf = (message: Received) =>
  (message.data as ServerEventMap['message']).message.data!.seq as number;

describe('ordering', () => {
  // Bursts of 50 requests from one client: beyond the default action budget on purpose.
  const { connect, connectAll } = useTestServer({ env: RATE_LIMITS_OFF });

  describe('one connection', () => {
    it('handles join_room before the update_state, broadcast and get_state sent right behind it', async () => {
      const bob = await connect('bob');
      await bob.join('gallery');
      const alice = await connect('alice');

      // One tick, no awaits: the join must be done before the next frames are handled.
      const join = alice.request('join_room', { roomId: 'gallery' });
      const updateId = alice.request('update_state', {
        roomId: 'gallery',
        ops: [addOp('a1')],
      });
      alice.broadcast('gallery', { type: 'hello', data: { n: 1 } });
      const getId = alice.request('get_state', { roomId: 'gallery' });
      const leave = alice.request('leave_room', { roomId: 'gallery' });

      const replies: Received[] = [];
      for (let i = 0; i < 4; i += 1) {
        replies.push(await alice.nextAny());
      }
      expect(
        replies.map((reply) => [reply.event, (reply.data as { requestId?: string }).requestId]),
      ).toEqual([
        ['room_joined', join],
        ['state_updated', updateId],
        ['state', getId],
        ['room_left', leave],
      ]);
      expect((replies[1].data as StateUpdated).version).toBe(1);
      expect((replies[2].data as ServerEventMap['state']).state.annotations).toEqual([
        { id: 'a1', label: 'a1' },
      ]);

      const seenByBob: Received[] = [];
      for (let i = 0; i < 4; i += 1) {
        seenByBob.push(await bob.nextAny());
      }
      expect(seenByBob.map((message) => message.event)).toEqual([
        'user_joined',
        'state_updated',
        'message',
        'user_left',
      ]);
      expect(seenByBob[2].data).toStrictEqual({
        roomId: 'gallery',
        message: { type: 'hello', data: { n: 1 } },
        senderId: 'alice',
      });
      await alice.expectNothing(50);
    });

    it('handles a join that creates the room before a patch sent in the same tick', async () => {
      const alice = await connect('alice');
      const join = alice.request('join_room', { roomId: 'brand-new' });
      const patchId = alice.request('update_state', {
        roomId: 'brand-new',
        baseVersion: 0,
        patch: { sceneUrl: 'https://example.com/s.glb' },
      });
      expect(await alice.nextAny()).toMatchObject({
        event: 'room_joined',
        data: { requestId: join, roomInfo: { roomId: 'brand-new' } },
      });
      expect(await alice.nextAny()).toMatchObject({
        event: 'state_updated',
        data: { requestId: patchId, version: 1 },
      });
    });

    it('answers a burst of 50 mixed requests with 50 replies in request order', async () => {
      const alice = await connect('alice');
      await alice.join('gallery');
      const sent: Array<[string, string]> = [];
      for (let i = 0; i < 50; i += 1) {
        switch (i % 5) {
          case 0:
            sent.push([alice.request('ping'), 'pong']);
            break;
          case 1:
            sent.push([alice.request('get_state', { roomId: 'gallery' }), 'state']);
            break;
          case 2:
            sent.push([
              alice.request('update_state', { roomId: 'gallery', ops: [addOp(`n${i}`)] }),
              'state_updated',
            ]);
            break;
          case 3:
            sent.push([alice.request('join_room', { roomId: 'gallery' }), 'room_joined']);
            break;
          default:
            sent.push([alice.request('no_such_action'), 'error']);
        }
      }

      const replies: Received[] = [];
      for (let i = 0; i < 50; i += 1) {
        replies.push(await alice.nextAny(5000));
      }
      expect(
        replies.map((reply) => [(reply.data as { requestId?: string }).requestId, reply.event]),
      ).toEqual(sent);

      // Each get_state sees exactly the updates sent before it.
      let expectedVersion = 0;
      replies.forEach((reply, index) => {
        if (reply.event === 'state_updated') {
          expectedVersion += 1;
          expect((reply.data as StateUpdated).version).toBe(expectedVersion);
        }
        if (reply.event === 'state') {
          expect({ index, version: (reply.data as ServerEventMap['state']).version }).toEqual({
            index,
            version: expectedVersion,
          });
        }
      });
      expect(expectedVersion).toBe(10);
      await alice.expectNothing(50);
    });
  });

  describe('a joiner while others are busy', () => {
    it('gets room_joined first, then every later state_updated in order with no gap or duplicate', async () => {
      const alice = await connect('alice');
      const carol = await connect('carol');
      const bob = await connect('bob');
      await alice.join('gallery');
      await carol.join('gallery');
      await alice.next('user_joined');

      const rounds = 60;
      const joinAtRound = 20;
      let joinRequestId = '';
      let lastMessageSeq = 0;
      for (let round = 0; round < rounds; round += 1) {
        for (let k = 0; k < 3; k += 1) {
          alice.request('update_state', {
            roomId: 'gallery',
            ops: [addOp(`alice-${round}-${k}`)],
          });
          lastMessageSeq += 1;
          alice.broadcast('gallery', { type: 'tick', data: { seq: lastMessageSeq } });
          carol.request('update_state', {
            roomId: 'gallery',
            ops: [addOp(`carol-${round}-${k}`)],
          });
        }
        if (round === joinAtRound) {
          joinRequestId = bob.request('join_room', { roomId: 'gallery' });
        }
        await delay(2);
      }
      const finalVersion = rounds * 3 * 2;

      const first = await bob.nextAny(5000);
      expect(first.event).toBe('room_joined');
      expect((first.data as { requestId?: string }).requestId).toBe(joinRequestId);
      const snapshot = (first.data as ServerEventMap['room_joined']).roomInfo;
      // The join really happened in the middle of the traffic.
      expect(snapshot.state.version).toBeGreaterThan(0);
      expect(snapshot.state.version).toBeLessThan(finalVersion);
      expect(snapshot.state.annotations).toHaveLength(snapshot.state.version);

      const versions: number[] = [];
      const messageSeqs: number[] = [];
      let lastVersion = snapshot.state.version;
      while (lastVersion < finalVersion) {
        const message = await bob.nextAny(5000);
        if (message.event === 'state_updated') {
          lastVersion = (message.data as StateUpdated).version;
          versions.push(lastVersion);
        } else {
          expect(message.event).toBe('message');
          messageSeqs.push(seqOf(message));
        }
      }
      expect(versions).toEqual(
        Array.from(
          { length: finalVersion - snapshot.state.version },
          (_, index) => snapshot.state.version + index + 1,
        ),
      );
      // Broadcasts arrive in the order alice sent them, none twice, up to her last one.
      while (messageSeqs[messageSeqs.length - 1] !== lastMessageSeq) {
        const message = await bob.nextAny(5000);
        expect(message.event).toBe('message');
        messageSeqs.push(seqOf(message));
      }
      expect(messageSeqs.length).toBeGreaterThan(0);
      messageSeqs.forEach((seq, index) => {
        if (index > 0) {
          expect(seq).toBe(messageSeqs[index - 1] + 1);
        }
      });
      await bob.expectNothing(50);

      const state = await (async () => {
        const requestId = bob.request('get_state', { roomId: 'gallery' });
        return (await bob.reply(requestId)).data as ServerEventMap['state'];
      })();
      expect(state.version).toBe(finalVersion);
      expect(state.state.annotations).toHaveLength(finalVersion);
    });

    it('gives each of several simultaneous joiners room_joined first and a gapless tail of updates', async () => {
      const alice = await connect('alice');
      await alice.join('gallery');
      const joiners = await connectAll('j1', 'j2', 'j3', 'j4');

      const rounds = 30;
      for (let round = 0; round < rounds; round += 1) {
        for (let k = 0; k < 4; k += 1) {
          alice.request('update_state', { roomId: 'gallery', ops: [addOp(`a-${round}-${k}`)] });
        }
        if (round % 5 === 2 && round / 5 < joiners.length) {
          joiners[Math.floor(round / 5)].request('join_room', { roomId: 'gallery' });
        }
        await delay(1);
      }
      const finalVersion = rounds * 4;

      for (const joiner of joiners) {
        const first = await joiner.nextAny(5000);
        expect(first.event).toBe('room_joined');
        let version = (first.data as ServerEventMap['room_joined']).roomInfo.state.version;
        while (version < finalVersion) {
          const message = await joiner.nextAny(5000);
          if (message.event === 'user_joined') {
            continue;
          }
          expect(message.event).toBe('state_updated');
          expect((message.data as StateUpdated).version).toBe(version + 1);
          version += 1;
        }
      }
    });
  });
});
